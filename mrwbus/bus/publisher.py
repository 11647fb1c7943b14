"""The one place that sends: every message persistent, JSON, and confirmed by the broker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage

from mrwbus.bus.topology import (
    COMMANDS,
    DEAD,
    DEAD_AT_HEADER,
    DEAD_ID_HEADER,
    ERROR_HEADER,
    EVENTS,
)
from mrwbus.messages import Event, RecoveryCommand, WireModel, new_id, utc_now

PUBLISH_TIMEOUT = 15.0
"""Seconds to wait for a confirm. A confirm that never comes (a connection dying under it) must
end the session, not hang it."""


def json_message(model: WireModel, **properties: object) -> Message:
    return Message(
        model.to_body(),
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=DeliveryMode.PERSISTENT,
        message_id=model.id,  # type: ignore[attr-defined]
        type=type(model).__name__,
        **properties,  # type: ignore[arg-type]
    )


class Publisher:
    """Publishes on a channel opened with publisher confirms; each call returns once confirmed."""

    def __init__(
        self,
        channel: AbstractChannel,
        exchanges: dict[str, AbstractExchange],
        *,
        timeout: float = PUBLISH_TIMEOUT,
    ) -> None:
        self.channel = channel
        self.exchanges = exchanges
        self.timeout = timeout

    async def publish(
        self, exchange: str, routing_key: str, model: WireModel, *, mandatory: bool = True
    ) -> None:
        await self.exchanges[exchange].publish(
            json_message(model), routing_key, mandatory=mandatory, timeout=self.timeout
        )

    async def command(self, command: RecoveryCommand) -> None:
        # Mandatory: every server has a queue bound, so a return means the topology is broken.
        await self.publish(COMMANDS, command.routing_key, command)

    async def event(self, event: Event) -> None:
        # Not mandatory: nobody may be watching, and that is fine.
        await self.publish(EVENTS, event.routing_key, event, mandatory=False)

    async def all(self, commands: Iterable[RecoveryCommand], events: Iterable[Event]) -> None:
        """Publish everything and wait until the broker confirmed every message."""
        await asyncio.gather(*map(self.command, commands), *map(self.event, events))

    async def dead_letter(self, message: AbstractIncomingMessage, reason: str) -> None:
        """Copy a message that cannot be processed to `mrwbus.dead`, with the reason."""
        headers = dict(message.headers or {})
        headers[ERROR_HEADER] = reason
        headers["x-mrwbus-routing-key"] = message.routing_key or ""
        headers["x-mrwbus-exchange"] = message.exchange or ""
        headers[DEAD_ID_HEADER] = new_id()
        now = utc_now()
        headers[DEAD_AT_HEADER] = now.isoformat()
        copy = Message(
            message.body,
            headers=headers,
            content_type=message.content_type,
            delivery_mode=DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            timestamp=now,  # for other tools; the header has the microseconds
        )
        await self.channel.default_exchange.publish(
            copy, routing_key=DEAD, mandatory=True, timeout=self.timeout
        )
