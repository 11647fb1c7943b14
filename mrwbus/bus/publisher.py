"""The one place that sends: every message persistent, JSON, and confirmed by the broker.

Commands, events, dead letters (and their replays), the operator's control requests and the
service's replies to them all go out here. A reply goes only to a queue the broker generated for the asker
(`amq.gen-*`, or direct reply-to): a `reply_to` naming any other queue (the snapshot, an agent's
commands) would let anyone who can send a control request write there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage

from mrwbus.bus.frames import json_properties
from mrwbus.bus.identity import SENDER_HEADER, UNKNOWN_SENDER, effective_sender
from mrwbus.bus.publish_batch import Confirmation, PublishBatch, new_message_id
from mrwbus.bus.topology import (
    COMMANDS,
    DEAD,
    DEAD_AT_HEADER,
    DEAD_ID_HEADER,
    ERROR_HEADER,
    EVENTS,
)
from mrwbus.messages import (
    ControlReply,
    Event,
    EventBatch,
    RecoveryCommand,
    WireModel,
    new_id,
    utc_now,
)

REPLY_PREFIXES = ("amq.gen-", "amq.rabbitmq.reply-to")
"""The only queues a reply may go to: names the broker generates, never one a client chose."""

PUBLISH_TIMEOUT = 15.0
"""Seconds to wait for a confirm. A confirm that never comes (a connection dying under it) must
end the session, not hang it."""


def json_message(model: WireModel, **properties: object) -> Message:
    return Message(
        model.to_body(),
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=DeliveryMode.PERSISTENT,
        message_id=getattr(model, "id", None),
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
        user_id: str | None = None,
    ) -> None:
        self.channel = channel
        self.exchanges = exchanges
        self.timeout = timeout
        self.user_id = user_id
        """Set as every message's AMQP `user_id`: the connection's user (`bus.connection.
        connection_user`), which the broker verifies, so a consumer can trust who sent it (see
        docs/security.md)."""
        self._batch: PublishBatch | None = None

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        model: WireModel,
        *,
        mandatory: bool = True,
        **properties: object,
    ) -> None:
        """Publish one message and return once the broker confirmed it (a nack, a return of a
        mandatory message or a missing confirm raises), with the AMQP `properties` given (a
        request's `reply_to`, say).

        Without extra properties (an agent's result, a command) it goes through this turn's
        `PublishBatch`, encoded by `bus.frames`, and is written at once (`PublishBatch.flush`)
        with whatever the turn queued before it: the caller waits on nothing else."""
        if properties:
            await self.exchanges[exchange].publish(
                json_message(model, **self._signed(properties)),
                routing_key,
                mandatory=mandatory,
                timeout=self.timeout,
            )
            return
        batch = await self._current_batch()
        confirmation = self._queue(batch, exchange, routing_key, model, mandatory)
        batch.flush()
        await confirmation

    async def _current_batch(self) -> PublishBatch:
        channel = await self.channel.get_underlay_channel()
        if self._batch is None or self._batch.channel is not channel:
            self._batch = PublishBatch(channel, self.timeout)
        return self._batch

    def _queue(
        self,
        batch: PublishBatch,
        exchange: str,
        routing_key: str,
        model: WireModel,
        mandatory: bool,
        bcc: list[str] | None = None,
    ) -> Confirmation:
        message_id = getattr(model, "id", None) or (new_message_id() if mandatory else None)
        return batch.publish(
            self.exchanges[exchange].name,
            routing_key,
            model.to_body(),
            json_properties(message_id, type(model).__name__, self.user_id, bcc),
            message_id=message_id,
            mandatory=mandatory,
        )

    def _queue_events(self, batch: PublishBatch, events: list[Event]) -> list[Confirmation]:
        """A decision's events as one `EventBatch`, routed by every event's key. Not mandatory:
        nobody may be watching, and that is fine."""
        if not events:
            return []
        packed = EventBatch.of(events)
        key, others = packed.routing_key, packed.other_routing_keys
        return [self._queue(batch, EVENTS, key, packed, False, others)]

    async def ack(self, message: AbstractIncomingMessage) -> None:
        """Acknowledge a delivery: in this turn's write when it came on this channel (the
        service's faults), else through aio-pika."""
        batch = await self._current_batch()
        if message.delivery_tag is not None and message.channel is batch.channel:
            batch.ack(message.delivery_tag)
        else:
            await message.ack()

    def _signed(self, properties: dict[str, object]) -> dict[str, object]:
        return {**properties, "user_id": self.user_id} if self.user_id else properties

    async def command(self, command: RecoveryCommand) -> None:
        # Mandatory: every server has a queue bound, so a return means the topology is broken.
        await self.publish(COMMANDS, command.routing_key, command)

    async def all(self, commands: Iterable[RecoveryCommand], events: Iterable[Event]) -> None:
        """Publish everything (in this turn's batch) and wait until the broker confirmed every
        message: each command, mandatory (every server has a queue bound, so a return means the
        topology is broken), and the events as one `EventBatch`."""
        batch = await self._current_batch()
        await asyncio.gather(
            *(self._queue(batch, COMMANDS, item.routing_key, item, True) for item in commands),
            *self._queue_events(batch, list(events)),
        )

    async def dead_letter(self, message: AbstractIncomingMessage, reason: str) -> None:
        """Copy a message that cannot be processed to `mrwbus.dead` (through the exchange of
        that name, which every role that consumes may write), with the reason."""
        headers = dict(message.headers or {})
        headers[ERROR_HEADER] = reason
        headers["x-mrwbus-routing-key"] = message.routing_key or ""
        headers["x-mrwbus-exchange"] = message.exchange or ""
        headers[DEAD_ID_HEADER] = new_id()
        now = utc_now()
        headers[DEAD_AT_HEADER] = now.isoformat()
        # Who sent it, as far as mrwbus can vouch (a replay is judged as sent by them); set
        # here whatever the message claimed in its own headers.
        headers[SENDER_HEADER] = (
            effective_sender(message.user_id, message.headers) or UNKNOWN_SENDER
        )
        copy = Message(
            message.body,
            headers=headers,
            content_type=message.content_type,
            delivery_mode=DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            timestamp=now,  # for other tools; the header has the microseconds
            user_id=self.user_id,
        )
        await self.exchanges[DEAD].publish(
            copy, routing_key=DEAD, mandatory=True, timeout=self.timeout
        )

    async def resend(self, message: Message, exchange: str, routing_key: str) -> None:
        """Send a message as it is, to an exchange by name ("" is the default one), confirmed
        (`mrwbus dead replay`); mandatory, so a route that is gone raises instead of losing it."""
        target = (
            await self.channel.get_exchange(exchange, ensure=False)
            if exchange
            else self.channel.default_exchange
        )
        await target.publish(message, routing_key=routing_key, mandatory=True, timeout=self.timeout)

    async def to_queue(self, queue: str, model: WireModel, **properties: object) -> None:
        """Send straight to a queue (through the default exchange), confirmed; mandatory, so
        a queue that is not there raises instead of losing the message."""
        await self.channel.default_exchange.publish(
            json_message(model, **self._signed(properties)),
            routing_key=queue,
            mandatory=True,
            timeout=self.timeout,
        )

    async def reply(self, request: AbstractIncomingMessage, reply: ControlReply) -> bool:
        """Answer a request on its `reply_to`, if that is a broker-generated queue; False if
        the reply was not sent (no `reply_to`, or one that names any other queue)."""
        if not is_reply_target(request.reply_to):
            return False
        # Not mandatory: an operator who gave up waiting has no queue any more.
        await self.channel.default_exchange.publish(
            json_message(reply, **self._signed({"correlation_id": request.correlation_id})),
            routing_key=request.reply_to or "",
            mandatory=False,
            timeout=self.timeout,
        )
        return True


def is_reply_target(reply_to: str | None) -> bool:
    """True for a queue name the broker generated for a client (`amq.gen-*`, direct reply-to)."""
    return bool(reply_to) and any((reply_to or "").startswith(prefix) for prefix in REPLY_PREFIXES)
