"""Operators' request/reply client: one request to the running service, one reply."""

from __future__ import annotations

import asyncio

from aio_pika import Message
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from aiormq.exceptions import ChannelNotFoundEntity

from mrwbus.bus.connection import connect
from mrwbus.bus.topology import CONTROL
from mrwbus.errors import ServiceError
from mrwbus.messages import ControlReply, ControlRequest


async def existing_queue(channel: AbstractChannel, name: str, missing: str) -> AbstractQueue:
    """The queue `name` (a passive declare), or `ServiceError(missing)` if there is none."""
    try:
        return await channel.declare_queue(name, passive=True)
    except ChannelNotFoundEntity as exc:
        raise ServiceError(missing) from exc


async def ask_service(url: str, request: ControlRequest, *, timeout: float = 10.0) -> ControlReply:
    """Send a request to the active service and wait for its reply; `ServiceError` if none."""
    connection = await connect(url, attempts=1, name="mrwbus-operator")
    try:
        declared = await existing_queue(
            await connection.channel(),
            CONTROL,
            "the mrwbus service is not running (it has never started on this broker)",
        )
        if not declared.declaration_result.consumer_count:
            raise ServiceError(
                "the mrwbus service is not running (nobody consumes its control queue)"
            )
        channel = await connection.channel()
        replies = await channel.declare_queue(exclusive=True, auto_delete=True)
        answer: asyncio.Future[ControlReply] = asyncio.get_running_loop().create_future()

        async def on_reply(message: AbstractIncomingMessage) -> None:
            if message.correlation_id == request.id and not answer.done():
                answer.set_result(ControlReply.model_validate_json(message.body))

        await replies.consume(on_reply, no_ack=True)
        await channel.default_exchange.publish(
            Message(
                request.to_body(),
                content_type="application/json",
                message_id=request.id,
                correlation_id=request.id,
                reply_to=replies.name,
                expiration=timeout,
            ),
            routing_key=CONTROL,
        )
        try:
            return await asyncio.wait_for(answer, timeout)
        except TimeoutError as exc:
            raise ServiceError(f"the mrwbus service did not answer within {timeout:g} s") from exc
    finally:
        await connection.close()
