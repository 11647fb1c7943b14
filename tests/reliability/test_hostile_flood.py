"""Hostile input never stalls anything (issue 13, Must show): 1,000 each of deeply nested
bodies, 5,000-digit numbers, invalid UTF-8 and 70 KB bodies on EVERY input queue (faults,
results, control, server1's agent's commands), interleaved with good faults. Every bad one is
dead-lettered with its reason, every good fault is decided (and carried out by the agent), and
`status` answers throughout. `MRWBUS_FLOOD_EACH` scales it down for a quick look.

Run alone: `pytest tests/reliability/test_hostile_flood.py -s` (no broker restart in it).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import aio_pika
import pytest

from mrwbus.agent import Agent
from mrwbus.bus.publisher import json_message
from mrwbus.bus.rpc import ask_service
from mrwbus.bus.topology import (
    COMMANDS,
    CONTROL,
    FAULTS,
    RESULTS,
    declare_exchanges,
)
from mrwbus.config.loading import parse_config
from mrwbus.messages import MAX_BODY_BYTES, ControlRequest, ControlVerb, new_id
from tests.integration.conftest import running_service
from tests.integration.test_agent_runtime import Calls, make_agent, running
from tests.reliability.harness import cluster_yaml, faults_for
from tests.reliability.test_reliability import drain_dead_letters

pytestmark = [pytest.mark.broker, pytest.mark.reliability]

EACH = int(os.environ.get("MRWBUS_FLOOD_EACH", "1000"))
"""Bad messages of each kind on each queue."""

DEPTH = 20_000
"""Nesting of the deep bodies (40 KB: under the size limit, so the depth is what is refused)."""

KINDS: dict[str, tuple[bytes, str]] = {
    "deep": (b'{"id": ' + b"[" * DEPTH + b"]" * DEPTH + b"}", "nested more than"),
    "number": (b'{"id": "x", "n": ' + b"7" * 5_000 + b"}", "a number of 5000 characters"),
    "utf8": (b'{"id": "\xff\xfe\xc3\x28"}', "not valid UTF-8"),
    "large": (b'{"id": "' + b"a" * (70 * 1024) + b'"}', f"at most {MAX_BODY_BYTES} allowed"),
}
assert len(KINDS["large"][0]) > MAX_BODY_BYTES

TARGETS = {
    # input queue: (exchange, routing key)
    "faults": (FAULTS, "server1.fc"),
    "results": (RESULTS, "server1.result"),
    "control": (CONTROL, "status"),
    "agent": (COMMANDS, "server1.restart"),
}

DECIDED_WITHIN = float(os.environ.get("MRWBUS_FLOOD_DECIDED_WITHIN", "300"))

STATUS_EVERY = 0.5
"""Seconds between status requests during the flood."""


async def test_a_hostile_flood_on_every_input_queue_stalls_nothing(
    amqp_url: str, tmp_path: Path
) -> None:
    bad = [
        (f"bad-{queue}-{kind}-{i}", queue, kind)
        for i in range(EACH)
        for queue in TARGETS
        for kind in KINDS
    ]
    good_faults = faults_for(len(bad) // 16)
    config = parse_config(cluster_yaml(len(good_faults)), "flood.yaml")
    calls = Calls()
    agent: Agent = make_agent(amqp_url, tmp_path / "agent", "server1", calls, initial_groups={"g1"})
    started = time.monotonic()
    async with running_service(config, amqp_url) as service, running(agent):
        status_latencies: list[float] = []
        flooding = asyncio.Event()

        async def ask_status() -> None:
            while not flooding.is_set():
                asked = time.monotonic()
                reply = await ask_service(
                    amqp_url, ControlRequest(id=new_id(), verb=ControlVerb.STATUS), timeout=30
                )
                assert reply.ok and reply.status is not None
                status_latencies.append(time.monotonic() - asked)
                await asyncio.sleep(STATUS_EVERY)

        statuses = asyncio.create_task(ask_status())
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchanges = await declare_exchanges(channel)
            pending = []
            for index, (message_id, queue, kind) in enumerate(bad):
                exchange, key = TARGETS[queue]
                message = aio_pika.Message(
                    KINDS[kind][0],
                    message_id=message_id,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                )
                pending.append(exchanges[exchange].publish(message, key, timeout=60))
                if index % 16 == 0 and index // 16 < len(good_faults):
                    fault = good_faults[index // 16]
                    pending.append(
                        exchanges[FAULTS].publish(json_message(fault), fault.routing_key)
                    )
                if len(pending) >= 200:
                    await asyncio.gather(*pending)
                    pending.clear()
            await asyncio.gather(*pending)
            published = time.monotonic() - started

            reasons = await drain_dead_letters(channel, len(bad), timeout=600)

            async def all_decided() -> None:
                while len({c.fault_id for c in calls.seen}) < len(good_faults):
                    assert not statuses.done() or statuses.exception() is None
                    await asyncio.sleep(0.2)

            try:
                await asyncio.wait_for(all_decided(), DECIDED_WITHIN)
            except TimeoutError:
                raise AssertionError(
                    f"{len(calls.seen)} of {len(good_faults)} good faults carried out; "
                    f"service: {service.counters}, {service.health}"
                ) from None
        flooding.set()
        await asyncio.wait_for(statuses, 60)
        assert service.health.connected and service.health.consuming
    elapsed = time.monotonic() - started

    missing = [message_id for message_id, _, _ in bad if message_id not in reasons]
    assert not missing, f"{len(missing)} bad messages not dead-lettered, e.g. {missing[:5]}"
    for message_id, _, kind in bad:
        assert KINDS[kind][1] in reasons[message_id], (message_id, reasons[message_id])
    decided = {command.fault_id for command in calls.seen}
    assert decided == {fault.id for fault in good_faults}
    assert len(calls.seen) == len(good_faults)  # each decided once
    assert len(status_latencies) >= 2
    print(
        f"\n{len(bad)} bad messages ({EACH} of each of {len(KINDS)} kinds on {len(TARGETS)} "
        f"queues) and {len(good_faults)} good faults: published in {published:.1f} s, all done "
        f"in {elapsed:.1f} s; every bad one dead-lettered with its reason, every good one "
        f"decided and run once; {len(status_latencies)} status answers, slowest "
        f"{max(status_latencies):.2f} s"
    )
