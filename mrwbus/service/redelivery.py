"""An input this replica cannot finish because its journal failed: left for the next leader.

Neither acknowledged nor handed back. A failed journal write ends the session at once (the
state in memory is ahead of the journal, `Service._become_active`), the connection closes and
the broker redelivers the message to the replica that leads next, with its state rebuilt:
counted once against the queue's delivery limit. Handed back with a nack instead, it came
straight back to this replica, failed again, and a quorum queue's delivery limit (5)
dead-lettered good faults within a second.
"""

from __future__ import annotations

import logging

from aio_pika.abc import AbstractIncomingMessage

from mrwbus.bus.session import Handler
from mrwbus.errors import JournalFailed

log = logging.getLogger(__name__)


def left_to_redelivery(message: AbstractIncomingMessage, exc: BaseException) -> None:
    log.warning(
        "message %s left to redelivery: %s; this replica steps down",
        message.message_id or "(no id)",
        exc,
    )


def unless_the_journal_failed(handler: Handler) -> Handler:
    """`handler`, but a message whose journal write failed is left to redelivery (any other
    failure is the session's to handle: `Session.consume`)."""

    async def handle(message: AbstractIncomingMessage) -> None:
        try:
            await handler(message)
        except JournalFailed as exc:
            left_to_redelivery(message, exc)

    return handle
