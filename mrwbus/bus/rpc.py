"""Operators' request/reply client: one request to the running service, one reply."""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from aiormq.exceptions import ChannelNotFoundEntity

from mrwbus.bus.connection import Urls, connect_any, connection_user
from mrwbus.bus.publisher import Publisher
from mrwbus.bus.topology import CONTROL
from mrwbus.errors import ContractError, ServiceError
from mrwbus.messages import MAX_REPLY_BYTES, ControlReply, ControlRequest, parse_message


async def existing_queue(channel: AbstractChannel, name: str, missing: str) -> AbstractQueue:
    """The queue `name` (a passive declare), or `ServiceError(missing)` if there is none."""
    try:
        return await channel.declare_queue(name, passive=True)
    except ChannelNotFoundEntity as exc:
        raise ServiceError(missing) from exc


async def ask_service(url: Urls, request: ControlRequest, *, timeout: float = 10.0) -> ControlReply:
    """Send a request to the active service and wait for its reply; `ServiceError` if none."""
    connection = await connect_any(url, "mrwbus-operator")
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
                try:
                    answer.set_result(
                        parse_message(ControlReply, message.body, max_bytes=MAX_REPLY_BYTES)
                    )
                except ContractError as exc:
                    answer.set_exception(ServiceError(f"the service's reply is unreadable: {exc}"))

        await replies.consume(on_reply, no_ack=True)
        # Through the control exchange, keyed by the verb: only the service may write to the
        # default exchange, and the broker's topic permissions decide who may send which verb.
        exchanges = {CONTROL: await channel.get_exchange(CONTROL, ensure=False)}
        await Publisher(channel, exchanges, user_id=connection_user(channel)).publish(
            CONTROL,
            request.routing_key,
            request,
            correlation_id=request.id,
            reply_to=replies.name,
            expiration=timeout,
        )
        try:
            return await asyncio.wait_for(answer, timeout)
        except TimeoutError as exc:
            raise ServiceError(f"the mrwbus service did not answer within {timeout:g} s") from exc
    finally:
        await connection.close()
