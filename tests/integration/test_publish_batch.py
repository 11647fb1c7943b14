"""A turn's publishes written together on aiormq's channel, against the real broker: each is
confirmed on its own, a returned mandatory one fails alone, and aio-pika's own publishes on the
same channel keep their confirms."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import pytest
from aiormq.exceptions import PublishError

from mrwbus.bus.frames import json_properties
from mrwbus.bus.publish_batch import PublishBatch


async def test_a_turns_publishes_arrive_in_order_each_confirmed(amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        queue = await channel.declare_queue(f"batch-{uuid.uuid4().hex}", exclusive=True)
        batch = PublishBatch(await channel.get_underlay_channel(), timeout=10)

        def send(index: int, *, mandatory: bool = True, key: str = queue.name) -> asyncio.Future:
            message_id = f"m-{index}"
            return batch.publish(
                "", key, f'{{"n": {index}}}'.encode(), json_properties(message_id, "T", None),
                message_id=message_id, mandatory=mandatory,
            )  # fmt: skip

        first = [send(index) for index in range(50)]
        # aio-pika's own publish on the same channel, between two turns of ours.
        await channel.default_exchange.publish(aio_pika.Message(b'{"n": 50}'), queue.name)
        lost = send(51, key="no-such-queue")
        unwatched = send(52, mandatory=False, key="no-such-queue")
        second = [send(index) for index in range(53, 60)]

        await asyncio.gather(*first, *second, unwatched)
        with pytest.raises(PublishError):
            await lost

        bodies = []
        for _ in range(58):
            message = await queue.get(timeout=5)
            bodies.append(message.body)
            if message.body != b'{"n": 50}':
                assert message.content_type == "application/json"
                assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        # The batch is written at the end of the turn, so aio-pika's publish may come first;
        # ours keep their order, and each delivery tag matched its own confirm.
        assert b'{"n": 50}' in bodies
        ours = [body for body in bodies if body != b'{"n": 50}']
        assert ours == [f'{{"n": {index}}}'.encode() for index in [*range(50), *range(53, 60)]]


async def test_a_publish_on_a_closed_channel_fails(amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        batch = PublishBatch(await channel.get_underlay_channel(), timeout=10)
        await channel.close()
        queued = batch.publish(
            "", "anything", b"{}", json_properties("m", "T", None), message_id="m", mandatory=False
        )
        with pytest.raises(Exception):  # noqa: B017  # aiormq's reason or ours: it must not hang
            await asyncio.wait_for(queued, 5)
