"""Publishes (and acks) made in the same turn of the event loop go to the broker in one write.

A fault's decision publishes a command and its events; a burst of faults decides many at
once. aiormq sends each publish on its own (a lock, a timeout scope, a frame encoding and a
queue put per message); here every publish of one turn is numbered, encoded and written
together, and each still gets its own publisher confirm: the caller awaits the futures of its
own messages and nothing else, so a fault is still acknowledged only after everything it caused
is confirmed.

The turn's write goes at the start of the next turn. A message that a decision waits on
before anything else can happen (a journal entry; an agent's result) is `flush`ed instead:
written at once, with whatever the turn queued before it. Waiting for the turn's end held it
behind everything else ready in that turn (other deliveries decided, confirms handled): under
load the journal's confirm came 0.15 ms later on each of a failover's three service hops. Only
the first flush of a turn writes at once; the turn's later ones go together at its end, so a
burst still costs two writes, not one per message. A decision's commands and events are not
flushed: after a group commit many decisions publish in the same turn, and one more write per
confirm round cost the saturated throughput more than it gave a failover (docs/performance.md).

The numbering follows aiormq's channel (`delivery_tag`, `confirmations`) at the moment of the
write, so aiormq's reader resolves the confirms, nacks and returns of these publishes exactly as
of its own, and its own publishes on the same channel (dead letters, replies) keep theirs; one
of those made during the turn may reach the broker before the turn's batch.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any
from uuid import uuid4

from aiormq.abc import AbstractChannel, ChannelFrame, ConfirmationFrameType
from aiormq.exceptions import ChannelInvalidStateError

from mrwbus.bus.frames import ack_frame, publish_frames

Confirmation = asyncio.Future[ConfirmationFrameType]
Awaiting = list[tuple[str | None, Confirmation]]
"""A batch's confirmations, each with the message id aiormq finds a returned message by."""


class PublishBatch:
    """Collects publishes for one aiormq channel opened with publisher confirms."""

    def __init__(self, channel: AbstractChannel, timeout: float) -> None:
        self.channel = channel
        self.timeout = timeout
        self._frames: list[bytes] = []
        self._awaiting: Awaiting = []
        self._scheduled = False
        self._flushed = False
        """This turn wrote at once already (`flush`): what follows waits for the turn's end."""
        self._in_turn: set[asyncio.Future[None]] = set()
        # Plain loop futures (aiormq's own cost a callback each): when the channel closes,
        # every confirm still awaited fails here.
        channel.closing.add_done_callback(self._on_close)

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: bytes,
        *,
        message_id: str | None,
        mandatory: bool,
    ) -> Confirmation:
        """Queue a publish for this turn's write; the future resolves with the broker's confirm
        (or raises: a nack, a return of a mandatory message, the channel closing, no confirm
        within the timeout). `properties` come from `bus.frames`; a mandatory message must
        carry its `message_id`, the key aiormq finds a returned message by."""
        channel: Any = self.channel
        frames = publish_frames(
            channel.number, exchange, routing_key, mandatory, properties, body,
            channel.max_content_size,
        )  # fmt: skip
        confirmation: Confirmation = asyncio.get_running_loop().create_future()
        self._frames.append(frames)
        self._awaiting.append((message_id if mandatory else None, confirmation))
        self._schedule()
        return confirmation

    def ack(self, delivery_tag: int) -> None:
        """Acknowledge a delivery on this channel in this turn's write, after the publishes
        queued before it (nothing is awaited: an ack has no reply). On a closed channel there
        is nothing to acknowledge: the broker redelivers."""
        self._frames.append(ack_frame(self.channel.number, delivery_tag))
        self._schedule()

    def flush(self) -> None:
        """Write what is queued now, not at the turn's end: for a message someone waits on.
        Once a turn; the turn's later flushes leave their messages to its end, one write."""
        if self._frames and not self._flushed:
            self._flushed = True
            self._write_queued()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._turn_over)

    def _turn_over(self) -> None:
        self._scheduled = False
        self._flushed = False
        if self._frames:
            self._write_queued()

    def _write_queued(self) -> None:
        frames = ChannelFrame(payload=b"".join(self._frames), should_close=False)
        awaiting, self._frames, self._awaiting = self._awaiting, [], []
        channel: Any = self.channel
        if channel.is_closed:
            _fail(awaiting, _closed(channel))
        elif channel._Channel__lock.locked() or channel.write_queue.full():
            # aiormq is mid-publish (or the writer is behind): take our turn after it.
            self._in_turn.add(task := asyncio.ensure_future(self._write_in_turn(frames, awaiting)))
            task.add_done_callback(self._in_turn.discard)
        else:
            # Nothing else is between numbering and writing: no await from here to the put.
            self._number(awaiting)
            channel.write_queue.put_nowait(frames)
            self._expire_after_timeout(awaiting)

    async def _write_in_turn(self, frames: ChannelFrame, awaiting: Awaiting) -> None:
        channel: Any = self.channel
        try:
            async with channel.lock:
                self._number(awaiting)
                await channel.write_queue.put(frames)
        except BaseException as exc:
            _fail(awaiting, exc)
            if not isinstance(exc, Exception):
                raise
        self._expire_after_timeout(awaiting)

    def _number(self, awaiting: Awaiting) -> None:
        """Give each publish the channel's next delivery tag, in the order they are written."""
        channel: Any = self.channel
        confirmations = channel.confirmations
        returnable = channel.message_id_delivery_tag
        for message_id, confirmation in awaiting:
            channel.delivery_tag += 1
            tag = channel.delivery_tag
            confirmations[tag] = confirmation
            if message_id is not None:
                returnable[message_id] = tag
                confirmation.add_done_callback(partial(_forget, returnable, message_id, tag))

    def _on_close(self, closing: asyncio.Future[Any]) -> None:
        unconfirmed = self.channel.confirmations.values()  # type: ignore[attr-defined]
        _fail(
            [(None, item) for item in list(unconfirmed) if isinstance(item, asyncio.Future)],
            _closed(self.channel),
        )

    def _expire_after_timeout(self, awaiting: Awaiting) -> None:
        if not awaiting:  # acks only
            return
        asyncio.get_running_loop().call_later(
            self.timeout,
            _fail,
            awaiting,
            TimeoutError(f"no publisher confirm within {self.timeout:g} s"),
        )


def _fail(awaiting: Awaiting, exc: BaseException) -> None:
    for _, confirmation in awaiting:
        if not confirmation.done():
            confirmation.set_exception(exc)


def _closed(channel: AbstractChannel) -> BaseException:
    """Why the channel closed, as aiormq raises it to its own publishers (the broker's
    refusal, say), so callers see the same errors on either path."""
    closing = channel.closing
    if closing.done() and not closing.cancelled() and closing.exception() is not None:
        return closing.exception()  # type: ignore[return-value]
    return ChannelInvalidStateError(f"{channel!r} closed")


def _forget(returnable: dict[str, int], message_id: str, tag: int, _: object) -> None:
    if returnable.get(message_id) == tag:
        del returnable[message_id]


def new_message_id() -> str:
    """For a mandatory message without an id of its own (aiormq would do the same)."""
    return uuid4().hex
