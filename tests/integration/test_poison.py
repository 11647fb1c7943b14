"""A message its consumer keeps failing on is dead-lettered by the broker: nothing loops forever."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from mrwbus.bus.topology import (
    CONTROL,
    DEAD,
    DELIVERY_LIMIT,
    ERROR_HEADER,
    FAULTS,
    SNAPSHOT,
    agent_queue,
    declare_service_topology,
)
from mrwbus.messages import ControlRequest, ControlVerb
from mrwbus.relay import make_fault
from tests.integration.broker import BusProbe
from tests.integration.conftest import RunningService

pytestmark = pytest.mark.broker


async def first_message(queue: AbstractQueue) -> AbstractIncomingMessage | None:
    """The first message to arrive in `queue` within 10 s, acked; None if none came."""
    for _ in range(100):
        found = await queue.get(no_ack=True, fail=False)
        if found is not None:
            return found
        await asyncio.sleep(0.1)
    return None


@pytest.mark.parametrize("queue_name", [FAULTS, agent_queue("server1")])
async def test_a_poison_message_goes_to_the_dead_letter_queue(
    amqp_url: str, queue_name: str
) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        topology = await declare_service_topology(channel, ["server1"])
        fault = make_fault("server1", "NIC", "eth0")
        message = aio_pika.Message(fault.to_body(), message_id=fault.id)
        if queue_name == FAULTS:
            await topology.exchanges[FAULTS].publish(message, fault.routing_key)
        else:
            await channel.default_exchange.publish(message, routing_key=queue_name)

        deliveries = 0
        consumer_channel = await connection.channel()
        queue = await consumer_channel.declare_queue(queue_name, passive=True)

        async def crash(delivered: AbstractIncomingMessage) -> None:
            nonlocal deliveries
            deliveries += 1
            await delivered.nack(requeue=True)  # as a consumer that dies on it would

        await queue.consume(crash)
        dead = await first_message(await channel.declare_queue(DEAD, passive=True))
        assert dead is not None, f"still looping after {deliveries} deliveries"
        assert dead.message_id == fault.id
        death = dead.headers["x-death"][0]  # type: ignore[index]
        assert death["reason"] == "delivery_limit" and death["queue"] == queue_name
        assert deliveries == DELIVERY_LIMIT + 1
    finally:
        await connection.close()


CLUSTER = """
security: {verify_senders: false}
servers:
  server1: {}
  server2: {}
groups:
  failover1: {servers: [server1, server2], resources: [fip1]}
monitors:
  mrw1:
    category: NIC
    keyword: eth0
    recovery: {action: failover, target: failover1, max_failovers: 1, final_action: stop_group}
"""


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"id": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", "nested more than 32 deep"),
        (b'{"id": ' + b"9" * 5_000 + b"}", "a number of 5000 characters"),
        (b"\xff\xfe", "not valid UTF-8"),
    ],
    ids=["deep", "huge-number", "not-utf8"],
)
async def test_a_hostile_fault_is_dead_lettered_not_left_unacked(
    start_service: RunningService, probe: BusProbe, body: bytes, reason: str
) -> None:
    service = await start_service(CLUSTER)
    await probe.publish_raw(body, "server1.nic", message_id="hostile")
    (dead,) = await probe.dead_letters(1)
    assert reason in str((dead.headers or {})[ERROR_HEADER])
    assert service.counters.dead_lettered == 1
    # The fault queue still flows: a valid fault after it is decided.
    await probe.publish(make_fault("server1", "NIC", "eth0", "link down"))
    (stop,) = await probe.next_commands(1)
    assert stop.server == "server1"


async def test_a_reply_goes_only_to_a_broker_generated_queue(
    start_service: RunningService, probe: BusProbe
) -> None:
    await start_service(CLUSTER)
    channel = probe.channel
    before = await channel.declare_queue(SNAPSHOT, passive=True)
    snapshots = before.declaration_result.message_count

    hostile = ControlRequest(id="req-hostile", verb=ControlVerb.STATUS)
    await channel.default_exchange.publish(
        aio_pika.Message(hostile.to_body(), reply_to=SNAPSHOT, correlation_id=hostile.id),
        routing_key=CONTROL,
    )
    # An honest request after it: its reply says the service read the hostile one first.
    replies = await channel.declare_queue(exclusive=True)
    assert replies.name.startswith("amq.gen-")
    honest = ControlRequest(id="req-honest", verb=ControlVerb.STATUS)
    await channel.default_exchange.publish(
        aio_pika.Message(honest.to_body(), reply_to=replies.name, correlation_id=honest.id),
        routing_key=CONTROL,
    )
    reply = await first_message(replies)
    assert reply is not None and reply.correlation_id == honest.id
    await asyncio.sleep(0.5)  # the hostile request's handler, if it were to write, has written

    after = await channel.declare_queue(SNAPSHOT, passive=True)
    assert after.declaration_result.message_count == snapshots  # nothing written there
