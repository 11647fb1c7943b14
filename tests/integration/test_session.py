"""`bus.session` on the real broker: a consumer the broker cancels ends the session and a new one
consumes again; a stop lets the message in hand finish and ack."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from mrwbus.bus.session import Session, SessionRunner

pytestmark = pytest.mark.broker

QUEUE = "test.session"


class Body:
    """A session body as the service's and the agent's are: declare, consume, watch, drain."""

    def __init__(self) -> None:
        self.sessions = 0
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.handled: list[bytes] = []
        self.stop = asyncio.Event()

    async def session(self, session: Session) -> None:
        self.sessions += 1
        queue = await session.channel.declare_queue(QUEUE, durable=True)
        await session.consume(queue, self.handle)
        session.consuming()
        await session.watch(self.stop, 0.2)
        await session.drain(10)

    async def handle(self, message: AbstractIncomingMessage) -> None:
        self.started.set()
        await self.release.wait()
        self.handled.append(message.body)
        await message.ack()


async def test_a_consumer_cancelled_by_the_broker_ends_the_session_and_the_next_consumes(
    amqp_url: str,
) -> None:
    runner = SessionRunner([amqp_url], name="test-session", prefetch=1)
    body = Body()
    task = asyncio.create_task(runner.run(body.stop, body.session))
    try:
        await asyncio.wait_for(runner.ready.wait(), 15)
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(QUEUE)  # the broker cancels the session's consumer

            async def consuming_again() -> None:
                while not (body.sessions == 2 and runner.ready.is_set()):
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(consuming_again(), 15)
            assert runner.health.outages == 1
            assert "cancelled the consumer of test.session" in (runner.health.last_error or "")

            body.release.set()
            await channel.default_exchange.publish(aio_pika.Message(b"after"), QUEUE)

            async def handled() -> None:
                while body.handled != [b"after"]:
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(handled(), 15)
    finally:
        body.stop.set()
        await asyncio.wait_for(task, 30)
    assert not runner.health.connected and not runner.ready.is_set()


async def test_a_stop_lets_the_message_in_hand_finish_and_ack(amqp_url: str) -> None:
    runner = SessionRunner(amqp_url, name="test-session", prefetch=1)
    body = Body()
    task = asyncio.create_task(runner.run(body.stop, body.session))
    await asyncio.wait_for(runner.ready.wait(), 15)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(aio_pika.Message(b"in hand"), QUEUE)
        await asyncio.wait_for(body.started.wait(), 15)

        body.stop.set()
        await asyncio.sleep(0.3)  # the session is draining, not closed under the handler
        assert not task.done()
        body.release.set()
        await asyncio.wait_for(task, 30)

        assert body.handled == [b"in hand"]
        queue = await channel.declare_queue(QUEUE, passive=True)
        assert queue.declaration_result.message_count == 0  # acked, not redelivered
    assert runner.health.outages == 0


async def test_healthz_fails_while_a_consumer_is_stuck_on_a_message(amqp_url: str) -> None:
    from mrwbus.web.healthz import assess

    runner = SessionRunner(amqp_url, name="test-session", prefetch=1)
    runner.health.stuck_after = 0.5
    body = Body()
    task = asyncio.create_task(runner.run(body.stop, body.session))
    try:
        await asyncio.wait_for(runner.ready.wait(), 15)
        assert assess(runner.health).status == "ok"
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            await channel.default_exchange.publish(aio_pika.Message(b"hangs"), QUEUE)
            await asyncio.wait_for(body.started.wait(), 15)

            async def until(status: str) -> None:
                while assess(runner.health).status != status:
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(until("degraded"), 15)
            assert assess(runner.health).stuck == (QUEUE,)
            body.release.set()
            await asyncio.wait_for(until("ok"), 15)
    finally:
        body.stop.set()
        body.release.set()
        await asyncio.wait_for(task, 30)
