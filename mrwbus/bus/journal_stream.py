"""The service's state in RabbitMQ: an append-only journal on a stream, a snapshot, a leader lock.

- `mrwbus.journal` (a stream) holds entries: lists of records (`core.records`), each with a
  sequence number. Appends are group-committed: whatever was appended while the previous
  publish waited for its confirm goes out as one message, in order.
- `mrwbus.snapshot` (a quorum queue of length one) holds the newest snapshot: every record as
  of sequence number N, and the stream offset of the entry that holds N. Start-up reads it and
  replays only the entries after it, so start-up time does not grow with the journal.
- `mrwbus.leader` (an exclusive queue) is the lock: the replica whose connection declared it is
  the active one; the broker deletes it when that connection dies, and a standby takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiormq
import orjson
from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue

from mrwbus.bus.frames import json_properties
from mrwbus.bus.history_stream import HistoryOut, HistoryRecord
from mrwbus.bus.publish_batch import PublishBatch
from mrwbus.bus.publisher import PUBLISH_TIMEOUT
from mrwbus.bus.topology import (
    JOURNAL,
    SNAPSHOT,
    declare_leader_lock,
    existing_queue,
)
from mrwbus.errors import JournalFailed
from mrwbus.messages import new_id

Record = tuple[str, str, Any]
"""One change to the journaled state: (kind, key, value); the stream only carries it."""
Records = dict[str, dict[str, Any]]
"""A snapshot's state: kind -> key -> value."""

MAX_ENTRIES_PER_MESSAGE = 2_000
LAZY_WRITE_DELAY = 0.1
"""Seconds a lazy entry waits for an entry to ride with before it is written on its own."""
REPLAY_TIMEOUT = 120.0
_ENTRY_PROPERTIES = json_properties(None, "", None)
"""A journal message's: persistent JSON, nothing else."""


async def try_lead(connection: AbstractConnection) -> AbstractChannel | None:
    """Take the leader lock, or return None when another replica holds it.

    The returned channel must stay open: closing it keeps the lock (it belongs to the
    connection), but a closed connection releases it."""
    channel = await connection.channel()
    try:
        await declare_leader_lock(channel)
    except aiormq.exceptions.ChannelLockedResource:
        return None
    return channel


@dataclass(frozen=True)
class Snapshot:
    seq: int
    offset: int
    records: Records


async def load_snapshot(channel: AbstractChannel) -> Snapshot | None:
    queue = await existing_queue(channel, SNAPSHOT)
    message = await queue.get(no_ack=False, fail=False)
    if message is None:
        return None
    await message.nack(requeue=True)  # leave it for the next start
    data = orjson.loads(message.body)
    return Snapshot(seq=data["seq"], offset=data["offset"], records=data["records"])


async def save_snapshot(channel: AbstractChannel, snapshot: Snapshot) -> None:
    body = orjson.dumps(
        {"seq": snapshot.seq, "offset": snapshot.offset, "records": snapshot.records},
        option=orjson.OPT_NON_STR_KEYS,
    )
    message = Message(body, content_type="application/json", delivery_mode=DeliveryMode.PERSISTENT)
    await channel.default_exchange.publish(message, routing_key=SNAPSHOT, timeout=PUBLISH_TIMEOUT)


@dataclass(frozen=True)
class Batch:
    offset: int
    first: int
    last: int
    entries: list[tuple[int, list[Record]]]
    marker: str | None


def _decode(message: AbstractIncomingMessage) -> Batch:
    headers = message.headers or {}
    offset = headers.get("x-stream-offset")
    assert isinstance(offset, int)
    data = orjson.loads(message.body)
    entries = [(seq, [tuple(record) for record in records]) for seq, records in data["entries"]]
    return Batch(offset, data["first"], data["last"], entries, data.get("marker"))


class JournalWriter:
    """Appends entries in order; each append's future resolves once the broker confirmed it."""

    def __init__(self, channel: AbstractChannel, last_seq: int) -> None:
        self.channel = channel
        self.seq = last_seq
        self._pending: list[tuple[int, list[Record], asyncio.Future[int], list[HistoryRecord]]] = []
        self._notes: list[HistoryRecord] = []
        """History records with no journal entry of their own, for the next write."""
        self.history = HistoryOut()
        """The history stream, written in the same write as each journal message."""
        self._last: asyncio.Future[int] | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._lazy_write: asyncio.TimerHandle | None = None
        self.failed: BaseException | None = None
        self.on_failure: Callable[[BaseException], None] | None = None
        """Told once, when a write fails: the state in memory is ahead of the journal."""
        # Where each message landed, by counting: this writer is the journal's only writer (the
        # leader lock), its messages take consecutive offsets in the order they are published,
        # and the replay tells the offset of its first (the start-up marker).
        self._written = 0
        """Messages published so far, markers included; the next one's index."""
        self._publishing = asyncio.Lock()
        self._batch: PublishBatch | None = None
        self._first_offset: int | None = None
        self.batches: deque[tuple[int, int, int]] = deque(maxlen=10_000)
        """(first seq, last seq, index) of the newest confirmed messages holding entries."""

    def append(
        self,
        records: list[Record],
        *,
        lazy: bool = False,
        history: Sequence[HistoryRecord] = (),
    ) -> asyncio.Future[int]:
        """Queue an entry now (its place in the journal is fixed here); await the result.

        A `lazy` entry (a record that messages are out: nobody waits for it) rides with the
        next entry, or goes within `LAZY_WRITE_DELAY`: a write of its own would hold the next
        decision's entry back by a whole stream confirm, since one batch is in flight at a
        time. `history`: the records of what this entry decided, written to the history
        stream with it; the future resolves once both are confirmed."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if self.failed is not None:
            future.set_exception(JournalFailed(f"the journal is unavailable: {self.failed}"))
            return future
        self.seq += 1
        if self._notes:  # noted before this entry: written before its own records
            history = [*self._notes, *history]
            self._notes = []
        self._pending.append((self.seq, records, future, list(history)))
        self._last = future
        if lazy:
            if self._lazy_write is None:
                self._lazy_write = asyncio.get_running_loop().call_later(
                    LAZY_WRITE_DELAY, self._start_flush
                )
        else:
            self._start_flush()
        return future

    def note(self, record: HistoryRecord) -> None:
        """A history record with no state change (a fault received, one no monitor matched):
        it rides with the next entry, or is written on its own within `LAZY_WRITE_DELAY`."""
        if self.failed is not None:
            return
        self._notes.append(record)
        if self._lazy_write is None:
            self._lazy_write = asyncio.get_running_loop().call_later(
                LAZY_WRITE_DELAY, self._start_flush
            )

    def _start_flush(self) -> None:
        if self._lazy_write is not None:
            self._lazy_write.cancel()
            self._lazy_write = None
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())

    async def marker(self) -> str:
        """Append an entry that says only "this point"; replay stops there. The first marker a
        writer publishes is its start-up marker: `located` gives its offset."""
        marker = new_id()
        if self._pending:  # everything before "this point" is written before it
            self._start_flush()
        if self._flushing is not None:
            await asyncio.shield(self._flushing)
        await self._publish(self.seq, self.seq, [], marker)
        return marker

    def located(self, first_offset: int) -> None:
        """The offset of this writer's first message (the replay found it)."""
        self._first_offset = first_offset

    def recount(self, counted: int, found: int) -> None:
        """A message counted at offset `counted` was found at `found`: the stream took offsets
        of its own before it, and every later message lies as much further."""
        if self._first_offset is not None and found > counted:
            self._first_offset += found - counted

    def last_entry(self) -> asyncio.Future[int] | None:
        """The newest entry's future: it resolves once that entry and all before it are written."""
        return self._last

    def offset_of(self, seq: int) -> int | None:
        """The stream offset of the written message holding entry `seq`; None if unknown."""
        if self._first_offset is None or self.failed is not None:
            return None
        for first, last, index in reversed(self.batches):
            if first <= seq <= last:
                return self._first_offset + index
            if last < seq:
                break
        return None

    async def _flush(self) -> None:
        while self._notes and not self._pending:  # history alone: no journal message
            notes, self._notes = self._notes, []
            try:
                await self._publish(self.seq, self.seq, [], history=notes)
            except BaseException as exc:
                self._fail(exc)
                return
        while self._pending:
            batch, self._pending = (
                self._pending[:MAX_ENTRIES_PER_MESSAGE],
                self._pending[MAX_ENTRIES_PER_MESSAGE:],
            )
            try:
                await self._publish(
                    batch[0][0],
                    batch[-1][0],
                    [(seq, records) for seq, records, _, _ in batch],
                    history=[record for *_, history in batch for record in history],
                )
            except BaseException as exc:
                # Nothing after a lost entry may be written: the session ends and state is rebuilt.
                self._fail(exc)
                for _, _, future, _ in [*batch, *self._pending]:
                    if not future.done():
                        future.set_exception(JournalFailed(f"the journal write failed: {exc}"))
                self._pending = []
                return
            for seq, _, future, _ in batch:
                if not future.done():
                    future.set_result(seq)

    def _fail(self, exc: BaseException) -> None:
        if self.failed is None:
            self.failed = exc
            if self.on_failure is not None:
                self.on_failure(exc)

    async def _publish(
        self,
        first: int,
        last: int,
        entries: list[Any],
        marker: str | None = None,
        *,
        history: Sequence[HistoryRecord] = (),
    ) -> None:
        # orjson: a group commit of a burst is thousands of records, and the stdlib encoder was
        # a twentieth of the service's time; datetimes pass to `str` as `json.dumps` gave them.
        body = orjson.dumps(
            {"first": first, "last": last, "entries": entries, "marker": marker},
            default=str,
            option=orjson.OPT_PASSTHROUGH_DATETIME,
        )
        # One publish at a time, so the order of the indexes is the order of the offsets.
        async with self._publishing:
            # The service's own publish path (hand-encoded frames, a plain future for the
            # confirm), cheaper than aio-pika's for a message every decision waits on.
            channel = await self.channel.get_underlay_channel()
            if self._batch is None or self._batch.channel is not channel:
                self._batch = PublishBatch(channel, PUBLISH_TIMEOUT)
            journaled = None
            if entries or marker is not None or not history:
                index = self._written
                self._written += 1
                journaled = self._batch.publish(
                    "", JOURNAL, body, _ENTRY_PROPERTIES, message_id=None, mandatory=False
                )
            # The history rides the same write, right after the journal message; both are
            # awaited, so nothing is published that the history lacks.
            recorded = self.history.publish(self._batch, history)
            if journaled is not None:
                await journaled
            if recorded is not None:
                await recorded
        if entries:
            self.batches.append((first, last, index))

    async def drain(self) -> None:
        if self._pending or self._notes:
            self._start_flush()  # lazy entries too
        if self._flushing is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._flushing), PUBLISH_TIMEOUT)
        if self._batch is not None and self.failed is None:
            indexed = self.history.close_index(self._batch)
            if indexed is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(indexed), PUBLISH_TIMEOUT)


async def replay(
    channel: AbstractChannel, offset: int | str, until_marker: str, apply: Callable[[Batch], None]
) -> int:
    """Read the journal from `offset` up to and including the marker; return the marker's offset."""

    def reached(batch: Batch) -> bool:
        apply(batch)
        return batch.marker == until_marker

    try:
        return (await _read_until(channel, offset, reached, 2_000, REPLAY_TIMEOUT)).offset
    except TimeoutError as exc:
        raise JournalFailed(
            f"the journal replay did not reach its marker within {REPLAY_TIMEOUT:g} s"
        ) from exc


async def entries_at(channel: AbstractChannel, offset: int, timeout: float = 30.0) -> Batch:
    """The journal message at `offset`, read once (a snapshot checks the offset it names)."""
    return await _read_until(channel, offset, lambda _: True, 1, timeout)


async def entry_from(
    channel: AbstractChannel, offset: int, seq: int, timeout: float = 30.0
) -> Batch | None:
    """The journal message holding entry `seq`, read from `offset` (where the writer counted
    it) on; None if the messages there have passed it. The stream may hold offsets of its own
    between the writer's messages (seen here: one more at each new 64 MiB segment, 190,000
    entries in), so the message may lie a little later than counted, never earlier."""

    def reached(batch: Batch) -> bool:
        return (bool(batch.entries) and batch.last >= seq) or batch.first > seq

    found = await _read_until(channel, offset, reached, 16, timeout)
    return found if found.entries and found.first <= seq <= found.last else None


async def _read_until(
    channel: AbstractChannel,
    offset: int | str,
    done: Callable[[Batch], bool],
    prefetch: int,
    timeout: float,
) -> Batch:
    """Read the journal from `offset`, each message once, until `done` says so of one: that one."""
    queue: AbstractQueue = await existing_queue(channel, JOURNAL)
    await channel.set_qos(prefetch_count=prefetch)
    found: asyncio.Future[Batch] = asyncio.get_running_loop().create_future()

    async def on_message(message: AbstractIncomingMessage) -> None:
        batch = _decode(message)
        await message.ack()
        if not found.done() and done(batch):
            found.set_result(batch)

    tag = await queue.consume(on_message, arguments={"x-stream-offset": offset})
    try:
        return await asyncio.wait_for(found, timeout)
    finally:
        with contextlib.suppress(Exception):
            await queue.cancel(tag)
