"""The history stream, read: a time range (from a timestamp offset), a follow, one fault's story.

Streams are read with a consumer and `x-stream-offset`: a number, `first`, `last`, or a
timestamp (the broker starts at the chunk written at that second or before it). A reader that
is not following first finds where the stream ends (`stream_end`: the newest chunk's last
offset) and stops there. One fault is found through the index stream (`bus.history_stream`):
its messages name the faults of each stretch of history and when it was written, so the story
of one fault is read from the stretch that holds it, not from the stream's start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from mrwbus.bus.history_stream import (
    FORMAT_VERSION,
    HistoryRecord,
    copied_through,
    decode,
    holds,
)
from mrwbus.bus.topology import HISTORY, HISTORY_INDEX

Offset = int | str | datetime
"""Where a read starts: an offset, `first`, or a time (the broker's clock)."""

CLOCK_MARGIN = timedelta(seconds=5)
"""Read this much before a time: the broker's clock and the service's may differ a little."""
PREFETCH = 1_000
ACK_EVERY = 250
STORY_PREFETCH = 16
"""Messages sent ahead while reading one fault's story (or the index): it usually ends within
a few messages."""
END_WAIT = 2.0
"""Seconds to wait for the newest chunk of a stream; none by then: the stream is empty."""


async def stream_end(connection: AbstractConnection, name: str) -> int | None:
    """The offset of the stream's newest message; None when it holds none."""
    channel = await connection.channel()
    try:
        newest = await _newest_chunk(channel, name)
    finally:
        await channel.close()
    return max(offset for offset, _ in newest) if newest else None


async def history_complete_through(channel: AbstractChannel) -> int:
    """The journal entry through which the history holds every record, as its newest message
    says (`j`); 0 when it holds none (or only messages that do not say)."""
    return max(
        (copied_through(body) for _, body in await _newest_chunk(channel, HISTORY)), default=0
    )


async def _newest_chunk(channel: AbstractChannel, name: str) -> list[tuple[int, bytes]]:
    """(offset, body) of the messages in the stream's newest chunk: [] when it holds none."""
    seen: list[tuple[int, bytes]] = []
    arrived = asyncio.Event()

    async def on_message(message: AbstractIncomingMessage) -> None:
        seen.append((_offset(message), message.body))
        arrived.set()

    await channel.set_qos(prefetch_count=PREFETCH)
    queue = await channel.get_queue(name, ensure=False)
    tag = await queue.consume(on_message, arguments={"x-stream-offset": "last"})
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrived.wait(), END_WAIT)
        if seen:  # the rest of the newest chunk arrives with its first message
            await asyncio.sleep(0.05)
    finally:
        with contextlib.suppress(Exception):
            await queue.cancel(tag)
    return seen


def _offset(message: AbstractIncomingMessage) -> int:
    offset = (message.headers or {}).get("x-stream-offset")
    assert isinstance(offset, int)
    return offset


async def read_stream(
    connection: AbstractConnection,
    name: str,
    start: Offset,
    on_body: Callable[[int, bytes], bool],
    *,
    follow: asyncio.Event | None = None,
    first_only: bool = False,
    prefetch: int = PREFETCH,
) -> None:
    """Hand every message from `start` to `on_body(offset, body)` until it returns True, the
    stream's end as it was when the read began is reached, or (following) `follow` is set.
    `first_only`: a message is known to be there; wait at most `END_WAIT` for it.
    `prefetch`: messages the broker may send ahead; small where the read stops early (a
    history message may hold hundreds of records, and what was sent is read off the socket
    before the channel closes)."""
    end = None if follow is not None or first_only else await stream_end(connection, name)
    if follow is None and end is None and not first_only:
        return
    done = asyncio.Event()
    channel: AbstractChannel = await connection.channel()
    count = 0

    async def on_message(message: AbstractIncomingMessage) -> None:
        nonlocal count
        if done.is_set():
            return
        offset = _offset(message)
        count += 1
        if count % min(ACK_EVERY, max(1, prefetch // 2)) == 0 or first_only:
            await message.ack(multiple=True)  # the stream's credit: more comes
        if on_body(offset, message.body) or (end is not None and offset >= end):
            done.set()

    try:
        await channel.set_qos(prefetch_count=1 if first_only else prefetch)
        queue = await channel.get_queue(name, ensure=False)
        if isinstance(start, datetime):
            start = start - CLOCK_MARGIN
        await queue.consume(on_message, arguments={"x-stream-offset": start})
        if first_only:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), END_WAIT)
        elif follow is None:
            await done.wait()
        else:
            stopping = asyncio.ensure_future(follow.wait())
            finishing = asyncio.ensure_future(done.wait())
            await asyncio.wait({stopping, finishing}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            finishing.cancel()
    finally:
        with contextlib.suppress(Exception):
            await channel.close()


def record_time(record: HistoryRecord) -> datetime:
    return datetime.fromisoformat(record["at"])


async def read_history(
    connection: AbstractConnection,
    on_record: Callable[[HistoryRecord], bool],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    follow: asyncio.Event | None = None,
) -> None:
    """Every record decided within [since, until], in order, to `on_record` (True: stop)."""

    def on_body(_: int, body: bytes) -> bool:
        for record in decode(body):
            at = record_time(record)
            if since is not None and at < since:
                continue
            if until is not None and at > until:
                return until + CLOCK_MARGIN < at  # late records of a busy second may follow
            if on_record(record):
                return True
        return False

    await read_stream(connection, HISTORY, since or "first", on_body, follow=follow)


@dataclass(frozen=True)
class IndexStretch:
    """An index message: the faults that messages `first`..`last` of a writer's `session`
    hold, written between `written_from` and `written_to` (the service's clock, seconds since
    the epoch)."""

    session: str
    first: int
    last: int
    written_from: float
    written_to: float
    holds: bool


async def locate_fault(connection: AbstractConnection, fault_id: str) -> Offset:
    """Where to start reading for `fault_id`: the newest index stretch that names it, else where
    the index ends (the stretch no index message covers yet), else the stream's start."""
    found: IndexStretch | None = None
    last: IndexStretch | None = None

    def on_body(_: int, body: bytes) -> bool:
        nonlocal found, last
        data = orjson.loads(body)
        if not isinstance(data, dict) or data.get("v") != FORMAT_VERSION:
            return False
        named = holds(str(data.get("ids", "")), fault_id)
        last = IndexStretch(
            str(data.get("s", "")),
            int(data.get("first", 0)),
            int(data.get("last", 0)),
            float(data["from"]),
            float(data["to"]),
            named,
        )
        if named:
            found = last
        return False

    await read_stream(connection, HISTORY_INDEX, "first", on_body, prefetch=STORY_PREFETCH)
    if found is not None:
        return await _exact(connection, found, found.first)
    if last is not None:
        return await _exact(connection, last, last.last + 1)
    return "first"


async def _exact(connection: AbstractConnection, stretch: IndexStretch, number: int) -> Offset:
    """The offset of message `number` of the stretch's session: the time finds a message
    near it, whose own number tells how far to go (one writer's messages take consecutive
    offsets). Where that cannot be told (another session's message), that time."""
    near: list[tuple[int, str, int]] = []

    def first(offset: int, body: bytes) -> bool:
        data = orjson.loads(body)
        near.append((offset, str(data.get("s", "")), int(data.get("n", -1))))
        return True

    when = datetime.fromtimestamp(stretch.written_from, UTC)
    await read_stream(connection, HISTORY, when, first, first_only=True)
    if near and near[0][1] == stretch.session and 0 <= near[0][2] <= number:
        offset, _, found = near[0]
        return offset + (number - found)
    return when


class Story:
    """Collects the records of one fault: received, decided by each monitor, its commands, their
    results, the failover's phases and the events about it; complete once every monitor it
    matched decided and every command it caused has a result."""

    def __init__(self, fault_id: str) -> None:
        self.fault_id = fault_id
        self.records: list[HistoryRecord] = []
        self.monitors: set[str] | None = None
        self.decided: set[str | None] = set()
        self.commands: set[str] = set()
        self.answered: set[str] = set()

    def take(self, record: HistoryRecord) -> bool:
        """Keep `record` if it is about the fault; True once the story is complete."""
        kind = record["k"]
        mine = False
        if kind == "fault" and record["fault"]["id"] == self.fault_id:
            mine = True
            self.monitors = set(record.get("monitors") or ())
        elif kind == "decision" and record.get("fault_id") == self.fault_id:
            mine = True
            self.decided.add(record.get("monitor"))
        elif kind == "result" and record["result"]["command_id"] in self.commands:
            mine = True
            self.answered.add(record["result"]["command_id"])
        for command in record.get("commands", ()):
            if command.get("fault_id") == self.fault_id:
                mine = True
                self.commands.add(command["id"])
        if not mine and any(
            event.get("fault_id") == self.fault_id for event in record.get("events", ())
        ):
            mine = True
        if mine:
            self.records.append(record)
        return self.complete

    @property
    def complete(self) -> bool:
        if self.monitors is None:
            return False
        decided = self.monitors <= self.decided or (not self.monitors and None in self.decided)
        return decided and self.commands <= self.answered


async def fault_story(connection: AbstractConnection, fault_id: str) -> Story:
    """Everything the history holds about one fault, in order."""
    story = Story(fault_id)
    start = await locate_fault(connection, fault_id)

    def on_body(_: int, body: bytes) -> bool:
        if story.monitors is None and fault_id.encode() not in body:
            return False  # not there yet: skip decoding
        return any(story.take(record) for record in decode(body))

    await read_stream(connection, HISTORY, start, on_body, prefetch=STORY_PREFETCH)
    return story
