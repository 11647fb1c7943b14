"""`mrwbus dead`: listing without consuming, grouped by reason; replaying a fault once its
reason is gone, decided once however often it is replayed; purging only what is old enough."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from datetime import timedelta
from typing import Any

import aio_pika
import pytest

from mrwbus.bus.topology import DEAD, DEAD_ID_HEADER, ERROR_HEADER, dead_letter_arguments
from mrwbus.config.loading import parse_config
from mrwbus.config.model import DeadLetterLimits
from mrwbus.messages import new_id, utc_now
from mrwbus.relay import make_fault
from tests.integration.broker import BusProbe
from tests.integration.configs import two_servers_one_nic_monitor
from tests.integration.conftest import running_service

pytestmark = pytest.mark.broker

BASE = two_servers_one_nic_monitor("nic1")

WITH_SERVER9 = """
security: {verify_senders: false}
servers:
  server1: {}
  server2: {}
  server9: {}
groups:
  failover1: {servers: [server1, server2]}
  group9: {servers: [server9]}
monitors:
  nic1: {category: NIC, recovery: {action: restart, target: failover1}}
  nic9: {category: NIC, servers: {server9: {}}, recovery: {action: restart, target: group9}}
"""


def config(text: str) -> Any:
    return parse_config(textwrap.dedent(text), "test.yaml")


async def mrwbus(amqp_url: str, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mrwbus",
        *args,
        env=dict(os.environ, MRWBUS_AMQP_URL=amqp_url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, f"mrwbus {' '.join(args)}: {err.decode()}"
    return out.decode()


async def dead_count(probe: BusProbe, expected: int, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        queue = await probe.channel.declare_queue(DEAD, passive=True)
        count = queue.declaration_result.message_count
        if count == expected:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{count} dead letters, expected {expected}")
        await asyncio.sleep(0.1)


async def test_a_hundred_bad_faults_listed_by_reason_and_left_in_place(
    amqp_url: str, probe: BusProbe
) -> None:
    async with running_service(config(BASE), amqp_url):
        for i in range(34):
            await probe.publish_raw(b"{not json", "server1.nic", message_id=f"garbled-{i}")
        for i in range(33):
            body = json.dumps(
                {
                    "id": f"usb-{i}",
                    "server": "server1",
                    "category": "USB",
                    "device": "eth0",
                    "occurred_at": "2026-11-25T15:50:14Z",
                }
            ).encode()
            await probe.publish_raw(body, "server1.nic", message_id=f"usb-{i}")
        for i in range(33):
            fault = make_fault("server9", "NIC", "eth0", f"unknown {i}")
            await probe.publish(fault)
        await dead_count(probe, 100)

        listed = json.loads(await mrwbus(amqp_url, "dead", "list", "--json"))
        assert len(listed) == 100
        reasons: dict[str, int] = {}
        for letter in listed:
            reasons[letter["reason"]] = reasons.get(letter["reason"], 0) + 1
            assert letter["exchange"] == "mrwbus.faults" and letter["at"] is not None
        assert sorted(reasons.values()) == [33, 33, 34]
        assert "server 'server9' is not in the configuration" in reasons

        human = await mrwbus(amqp_url, "dead", "list")
        assert human.startswith("100 dead letters, 3 reasons")
        assert "server 'server9' is not in the configuration (33)" in human
        assert "body is not JSON" in human and "(34)" in human

        # Listing consumed nothing and kept the order.
        await dead_count(probe, 100)
        again = json.loads(await mrwbus(amqp_url, "dead", "list", "--json"))
        assert [letter["id"] for letter in again] == [letter["id"] for letter in listed]

        only = json.loads(await mrwbus(amqp_url, "dead", "list", "--reason", "NOT JSON", "--json"))
        assert len(only) == 34
        assert json.loads(await mrwbus(amqp_url, "dead", "list", "--since", "1h", "--json"))
        listed_event = await probe.wait_event("MRW-801")
        assert listed_event.detail["by"].startswith("operator")

        shown = await mrwbus(amqp_url, "dead", "show", listed[0]["id"][:8])
        assert "reason:" in shown and listed[0]["id"] in shown
        await probe.wait_event("MRW-802")


async def test_a_fault_replayed_after_its_reason_is_gone_is_decided_once(
    amqp_url: str, probe: BusProbe
) -> None:
    fault = make_fault("server9", "NIC", "eth0", "link down")
    async with running_service(config(BASE), amqp_url):
        await probe.publish(fault)
        await probe.publish(fault)  # the relay retried: dead-lettered twice
        await dead_count(probe, 2)
    await probe.no_more_commands()
    first, second = json.loads(await mrwbus(amqp_url, "dead", "list", "--json"))
    assert first["message_id"] == second["message_id"] == fault.id

    # The reason goes away: server9 is configured now, and the service restarted.
    async with running_service(config(WITH_SERVER9), amqp_url) as service:
        out = await mrwbus(amqp_url, "dead", "replay", first["id"])
        assert "1 dead letters replayed." in out
        (restart,) = await probe.next_commands(1)
        assert (restart.server, restart.group, restart.fault_id) == ("server9", "group9", fault.id)
        replayed = await probe.wait_event("MRW-803")
        assert replayed.detail["count"] == 1 and replayed.detail["by"].startswith("operator")
        await dead_count(probe, 1)

        await mrwbus(amqp_url, "dead", "replay", "--reason", "server9")
        await dead_count(probe, 0)

        async def handled_twice() -> None:
            while service.counters.faults_by_category["NIC"] < 2:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(handled_twice(), 10)
        await probe.no_more_commands(quiet=1.0)
        assert service.cluster.state_of("nic9", "server9").faults == 1
        queue = await probe.channel.declare_queue("mrwbus.faults", passive=True)
        assert queue.declaration_result.message_count == 0


async def test_purge_removes_only_what_is_older_than_asked(amqp_url: str, probe: BusProbe) -> None:
    async with running_service(config(BASE), amqp_url):
        old = utc_now() - timedelta(hours=2)
        for i in range(3):
            await probe.channel.default_exchange.publish(
                aio_pika.Message(
                    b'{"old": true}',
                    headers={
                        ERROR_HEADER: "an old reason",
                        "x-mrwbus-exchange": "mrwbus.faults",
                        "x-mrwbus-routing-key": "server1.nic",
                        DEAD_ID_HEADER: new_id(),
                    },
                    timestamp=old,
                    message_id=f"old-{i}",
                ),
                routing_key=DEAD,
            )
        for i in range(2):
            await probe.publish_raw(b"[]", "server1.nic", message_id=f"new-{i}")
        await dead_count(probe, 5)

        out = await mrwbus(amqp_url, "dead", "purge", "--before", "1h")
        assert "3 dead letters purged (older than 1h)." in out
        await dead_count(probe, 2)
        left = json.loads(await mrwbus(amqp_url, "dead", "list", "--json"))
        assert sorted(letter["message_id"] for letter in left) == ["new-0", "new-1"]
        purged = await probe.wait_event("MRW-804")
        assert purged.detail["count"] == 3

        out = await mrwbus(amqp_url, "dead", "purge", "--before", "1h")
        assert "0 dead letters purged" in out
        await dead_count(probe, 2)


async def test_a_poison_message_the_broker_dead_lettered_is_listed_and_replayed(
    amqp_url: str, probe: BusProbe
) -> None:
    from mrwbus.bus.topology import COMMANDS, DELIVERY_LIMIT, agent_queue, declare_agent_queue

    queue = await declare_agent_queue(probe.channel, probe.exchanges, "server7")
    await probe.exchanges[COMMANDS].publish(
        aio_pika.Message(b"poison", message_id="poison-1"), routing_key="server7.restart"
    )
    deliveries = 0

    async def keeps_failing(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal deliveries
        deliveries += 1
        await message.nack(requeue=True)

    tag = await queue.consume(keeps_failing)
    await dead_count(probe, 1)
    await queue.cancel(tag)
    assert deliveries == DELIVERY_LIMIT + 1

    (letter,) = json.loads(await mrwbus(amqp_url, "dead", "list", "--json"))
    assert letter["reason"].startswith(f"dead-lettered by the broker from {agent_queue('server7')}")
    assert (letter["exchange"], letter["routing_key"]) == (COMMANDS, "server7.restart")
    assert letter["at"] is not None and letter["message_id"] == "poison-1"

    # The service replays (operators may not write to mrwbus.commands); server7 is none of
    # its servers, so nothing else of its reaches server7's queue.
    async with running_service(config(BASE), amqp_url):
        await mrwbus(amqp_url, "dead", "replay", letter["id"])
    await dead_count(probe, 0)
    back: asyncio.Future[aio_pika.abc.AbstractIncomingMessage] = asyncio.Future()

    async def receive(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        back.set_result(message)

    await queue.consume(receive, no_ack=True)
    replayed = await asyncio.wait_for(back, 10)
    assert replayed.body == b"poison" and "x-death" not in (replayed.headers or {})
    assert replayed.routing_key == "server7.restart"


async def test_the_dead_letter_queue_is_bounded_oldest_dropped_first(amqp_url: str) -> None:
    bounded = config(
        BASE.replace(
            "servers:", "service: {dead_letter_max_length: 3, dead_letter_ttl: 1d}\nservers:", 1
        )
    )
    # The service declares mrwbus.dead (no probe first: whoever declares it sets its limits).
    async with running_service(bounded, amqp_url), BusProbe.open(amqp_url) as probe:
        for i in range(5):
            await probe.publish_raw(b"{not json", "server1.nic", message_id=f"flood-{i}")
        await asyncio.sleep(1.0)  # all five dead-lettered; the broker keeps the newest three
        await dead_count(probe, 3)
        kept = json.loads(await mrwbus(amqp_url, "dead", "list", "--json"))
        assert sorted(letter["message_id"] for letter in kept) == [
            "flood-2",
            "flood-3",
            "flood-4",
        ]
        # Declared with exactly these arguments (the broker refuses a declaration with others).
        expected = dead_letter_arguments(DeadLetterLimits(max_length=3, ttl=timedelta(days=1)))
        assert expected["x-overflow"] == "drop-head"
        assert expected["x-message-ttl"] == 86_400_000
        await probe.channel.declare_queue(DEAD, durable=True, arguments=expected)
