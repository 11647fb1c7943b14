"""Operators' request/reply client: one request to the running service, one reply."""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractIncomingMessage
from aiormq.exceptions import ChannelNotFoundEntity

from mrwbus.bus.connection import Urls, connect_any
from mrwbus.bus.publisher import Publisher
from mrwbus.bus.topology import CONTROL
from mrwbus.errors import ContractError, ServiceError
from mrwbus.messages import ControlReply, ControlRequest, parse_message


async def ask_service(url: Urls, request: ControlRequest, *, timeout: float = 10.0) -> ControlReply:
    """Send a request to the active service and wait for its reply; `ServiceError` if none."""
    connection = await connect_any(url, "mrwbus-operator")
    try:
        channel = await connection.channel()
        try:
            declared = await channel.declare_queue(CONTROL, passive=True)
        except ChannelNotFoundEntity as exc:
            raise ServiceError(
                "the mrwbus service is not running (it has never started on this broker)"
            ) from exc
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
                    answer.set_result(parse_message(ControlReply, message.body))
                except ContractError as exc:
                    answer.set_exception(ServiceError(f"the service's reply is unreadable: {exc}"))

        await replies.consume(on_reply, no_ack=True)
        await Publisher(channel, {}).to_queue(
            CONTROL, request, correlation_id=request.id, reply_to=replies.name, expiration=timeout
        )
        try:
            return await asyncio.wait_for(answer, timeout)
        except TimeoutError as exc:
            raise ServiceError(f"the mrwbus service did not answer within {timeout:g} s") from exc
    finally:
        await connection.close()
