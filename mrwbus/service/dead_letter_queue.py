"""Reading `mrwbus.dead` without losing it; replaying and purging from it.

Every dead letter is taken with `basic.get` and a manual acknowledgement and held, unacked,
while the operator's command runs: nobody else sees it meanwhile, and nothing is lost if the
command dies. What is replayed is acknowledged only once its republish is confirmed; what is
purged is acknowledged; everything else is returned to the queue when the channel closes.
Returned messages do not keep their place (see `dead_letters.in_time_order`): letters are
listed and replayed oldest first by the time they were dead-lettered.
A look leaves a mark: the broker counts the delivery (`x-delivery-count`, `redelivered`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractIncomingMessage

from mrwbus.bus.connection import Urls, connect_any, connection_user
from mrwbus.bus.publisher import Publisher
from mrwbus.bus.rpc import existing_queue
from mrwbus.bus.topology import DEAD
from mrwbus.service.dead_letters import DeadLetter, describe, in_time_order, replay_headers

_KEPT_PROPERTIES = ("content_type", "content_encoding", "message_id", "correlation_id", "type")
"""What a replayed message keeps of the dead letter's AMQP properties, besides body and headers."""


@dataclass
class HeldDeadLetters:
    """The dead letters taken off the queue, in queue order, until the block ends."""

    letters: list[DeadLetter]
    _messages: dict[str, AbstractIncomingMessage]
    _publisher: Publisher

    async def replay(self, letter: DeadLetter, by: str) -> None:
        """Republish to where it came from, confirmed; then it leaves the dead-letter queue."""
        message = self._messages[letter.id]
        kept = {name: getattr(message, name) for name in _KEPT_PROPERTIES}
        copy = Message(
            letter.body,
            headers=replay_headers(letter, by),
            delivery_mode=DeliveryMode.PERSISTENT,
            user_id=self._publisher.user_id,
            **kept,
        )
        await self._publisher.resend(copy, letter.exchange, letter.routing_key)
        await message.ack()

    async def purge(self, letter: DeadLetter) -> None:
        await self._messages[letter.id].ack()


@asynccontextmanager
async def held_dead_letters(url: Urls) -> AsyncIterator[HeldDeadLetters]:
    """Take every dead letter (manual ack), yield them, and return whatever was not replayed
    or purged to the queue, in order."""
    connection = await connect_any(url, "mrwbus-dead-letters")
    try:
        reading = await connection.channel()
        queue = await existing_queue(
            reading,
            DEAD,
            f"there is no {DEAD} queue on this broker (the service never started here)",
        )
        confirming = await connection.channel(publisher_confirms=True, on_return_raises=True)
        letters: list[DeadLetter] = []
        messages: dict[str, AbstractIncomingMessage] = {}
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            letter = describe(
                message.body,
                message.headers,
                message_id=message.message_id,
                timestamp=message.timestamp,
                content_type=message.content_type,
                user_id=message.user_id,
            )
            if letter.id in messages:  # the same broker dead letter twice: keep ids unique
                letter = _renamed(letter, len(letters))
            letters.append(letter)
            messages[letter.id] = message
        yield HeldDeadLetters(
            in_time_order(letters),
            messages,
            Publisher(confirming, {}, user_id=connection_user(confirming)),
        )
        await reading.close()  # returns the unacknowledged, in their order
    finally:
        await connection.close()


def _renamed(letter: DeadLetter, position: int) -> DeadLetter:
    from dataclasses import replace

    return replace(letter, id=f"{letter.id[:24]}-{position}")
