"""A message its consumer keeps failing on is dead-lettered by the broker: nothing loops forever."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from mrwbus.bus.topology import DEAD, DELIVERY_LIMIT, FAULTS, agent_queue, declare_service_topology
from mrwbus.relay import make_fault

pytestmark = pytest.mark.broker


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
        dead_queue = await channel.declare_queue(DEAD, passive=True)
        dead = None
        for _ in range(100):
            dead = await dead_queue.get(no_ack=True, fail=False)
            if dead is not None:
                break
            await asyncio.sleep(0.1)
        assert dead is not None, f"still looping after {deliveries} deliveries"
        assert dead.message_id == fault.id
        death = dead.headers["x-death"][0]  # type: ignore[index]
        assert death["reason"] == "delivery_limit" and death["queue"] == queue_name
        assert deliveries == DELIVERY_LIMIT + 1
    finally:
        await connection.close()
