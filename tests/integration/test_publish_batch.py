"""A turn's publishes written together on aiormq's channel, against the real broker: each is
confirmed on its own, a returned mandatory one fails alone, and aio-pika's own publishes on the
same channel keep their confirms."""

from __future__ import annotations

import asyncio
import uuid
from functools import partial

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


def _send_numbered(batch: PublishBatch, queue: str, n: int) -> asyncio.Future:
    """Message `n` ({"n": n}, id `m-<n>`), mandatory, to `queue` through `batch`."""
    body, properties = f'{{"n": {n}}}'.encode(), json_properties(f"m-{n}", "T", None)
    return batch.publish("", queue, body, properties, message_id=f"m-{n}", mandatory=True)


async def test_a_flush_writes_at_once_and_only_the_turns_first(amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(f"batch-{uuid.uuid4().hex}", exclusive=True)
        underlay = await channel.get_underlay_channel()
        batch = PublishBatch(underlay, timeout=10)
        written: asyncio.Queue = underlay.write_queue  # type: ignore[attr-defined]

        send = partial(_send_numbered, batch, queue.name)

        await asyncio.sleep(0)
        before = written.qsize()
        confirms = [send(0), send(1)]
        assert written.qsize() == before  # queued for the turn's end
        batch.flush()
        assert written.qsize() == before + 1  # both, in one write, before the turn ends
        confirms.append(send(2))
        batch.flush()  # the turn wrote at once already: this one waits for its end
        assert written.qsize() == before + 1
        await asyncio.gather(*confirms)
        bodies = [(await queue.get(timeout=5)).body for _ in range(3)]
        assert bodies == [f'{{"n": {n}}}'.encode() for n in range(3)]

        before = written.qsize()
        confirm = send(3)  # a later turn: its first flush writes at once again
        batch.flush()
        assert written.qsize() == before + 1
        await asyncio.wait_for(confirm, 5)


PRIVATE_SURFACE = (
    "_Channel__lock",
    "lock",
    "write_queue",
    "confirmations",
    "delivery_tag",
    "message_id_delivery_tag",
    "max_content_size",
    "number",
    "closing",
)
"""What `PublishBatch` reads and writes on aiormq's channel, beyond its public API. aiormq is
pinned (`aiormq>=7.2,<8` in pyproject.toml); a release that renames any of these fails here,
loudly, before a publish could go unconfirmed."""


async def test_aiormqs_channel_still_has_what_the_batch_relies_on(amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        underlay = await channel.get_underlay_channel()
        missing = [name for name in PRIVATE_SURFACE if not hasattr(underlay, name)]
        assert not missing, (
            f"aiormq's Channel lacks {missing}: bus/publish_batch.py must follow aiormq "
            "(or go back to aio-pika's publish) before this version is used"
        )
        assert isinstance(underlay._Channel__lock, asyncio.Lock)  # type: ignore[attr-defined]


async def test_a_batch_written_while_aiormq_holds_its_lock_waits_its_turn(amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(f"batch-{uuid.uuid4().hex}", exclusive=True)
        underlay = await channel.get_underlay_channel()
        batch = PublishBatch(underlay, timeout=10)

        send = partial(_send_numbered, batch, queue.name)

        lock: asyncio.Lock = underlay._Channel__lock  # type: ignore[attr-defined]
        async with lock:  # as aiormq holds it mid-publish
            confirms = [send(n) for n in range(5)]
            await asyncio.sleep(0.05)  # the write's turn came and went: it waits for the lock
            assert not any(confirm.done() for confirm in confirms)
        await asyncio.gather(*confirms)
        bodies = [(await queue.get(timeout=5)).body for _ in range(5)]
        assert bodies == [f'{{"n": {n}}}'.encode() for n in range(5)]


async def test_a_confirm_that_never_comes_fails_after_the_timeout(amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        # Without confirm mode the broker never confirms: the batch's own timeout must end it.
        channel = await connection.channel(publisher_confirms=False)
        batch = PublishBatch(await channel.get_underlay_channel(), timeout=0.2)
        properties = json_properties("m", "T", None)
        confirm = batch.publish("", "nowhere", b"{}", properties, message_id="m", mandatory=False)
        done, _ = await asyncio.wait({confirm}, timeout=30)
        assert done == {confirm}
        with pytest.raises(TimeoutError, match=r"no publisher confirm within 0\.2 s"):
            confirm.result()
