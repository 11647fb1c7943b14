"""The journal's writer: entries appended in order, group-committed to `mrwbus.journal`.

Whatever was appended while the previous write waited for its confirm goes out as one message,
in order, carrying the history records of its entries; once confirmed, they are copied to the
history stream (`bus.history_stream`). One write is in flight at a time; the first of a quiet
spell is published in the turn its entry was appended. Each entry's future resolves once the
broker confirmed its message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aio_pika.abc import AbstractChannel

from mrwbus.bus.frames import json_properties
from mrwbus.bus.history_stream import HistoryOut, HistoryRecord
from mrwbus.bus.journal_stream import Record
from mrwbus.bus.publish_batch import Confirmation, PublishBatch
from mrwbus.bus.publisher import PUBLISH_TIMEOUT
from mrwbus.bus.topology import JOURNAL
from mrwbus.errors import JournalFailed
from mrwbus.messages import new_id

MAX_ENTRIES_PER_MESSAGE = 2_000
LAZY_WRITE_DELAY = 0.1
"""Seconds a lazy entry waits for an entry to ride with before it is written on its own."""
_ENTRY_PROPERTIES = json_properties(None, "", None)
"""A journal message's: persistent JSON, nothing else."""


@dataclass
class _Write:
    """One journal message published, awaiting its confirm."""

    first: int
    last: int
    index: int
    """The message's index among this writer's messages."""
    done: list[tuple[int, asyncio.Future[int]]]
    """The entries it holds: each resolves with its seq once the message is confirmed."""
    history: Sequence[HistoryRecord]
    """The history records it carries, copied to the history stream once it is confirmed."""
    confirmation: Confirmation


class JournalWriter:
    """Appends entries in order; each append's future resolves once the broker confirmed it."""

    def __init__(
        self, channel: AbstractChannel, last_seq: int, history: HistoryOut | None = None
    ) -> None:
        self.channel = channel
        self.seq = last_seq
        self._pending: list[tuple[int, list[Record], asyncio.Future[int], list[HistoryRecord]]] = []
        self._notes: list[HistoryRecord] = []
        """History records with no journal entry of their own, for the next write."""
        self._eager = False
        """An entry someone awaits is pending: the next write goes as soon as it can."""
        self._lazy_due = False
        """The lazy delay ran out (or a marker or stop needs everything): lazy entries and notes
        go even with no entry to ride with."""
        self.history = history or HistoryOut()
        """Where the history records go once their journal message is confirmed."""
        self.history.on_failure = self.fail
        self._last: asyncio.Future[int] | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._lazy_write: asyncio.TimerHandle | None = None
        self.failed: BaseException | None = None
        self.on_failure: Callable[[BaseException], None] | None = None
        """Told once, when a write fails: the state in memory is ahead of the journal."""
        # Where each message landed, by counting: this writer is the journal's only writer (the
        # leader lock), its messages take consecutive offsets in the order they are published,
        # and the replay tells the offset of its first (the start-up marker). Every publish is
        # made synchronously (`_emit`), so the order of the calls is the order of the offsets.
        self._written = 0
        """Messages published so far, markers included; the next one's index."""
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
        time. `history`: the records of what this entry decided, carried in its message (and
        copied to the history stream once it is confirmed)."""
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
            self._write_lazily()
        else:
            self._eager = True
            self._start_flush()
        return future

    def note(self, record: HistoryRecord) -> None:
        """A history record with no state change (a fault received, one no monitor matched):
        it rides with the next entry, or within `LAZY_WRITE_DELAY` in an entry of its own."""
        if self.failed is not None:
            return
        self._notes.append(record)
        self._write_lazily()

    def _write_lazily(self) -> None:
        if self._lazy_write is None:
            self._lazy_write = asyncio.get_running_loop().call_later(
                LAZY_WRITE_DELAY, self._lazy_delay_over
            )

    def _lazy_delay_over(self) -> None:
        self._lazy_write = None
        self._lazy_due = True
        self._start_flush()

    def _start_flush(self) -> None:
        if self._flushing is None or self._flushing.done():
            # No write in flight: the first goes out in this very turn (a task would start it
            # a turn later, behind whatever else is ready), the task awaits its confirms.
            try:
                first = self._emit_waiting() if self._batch is not None else None
            except Exception as exc:
                self._abandon(exc, None)
                return
            self._flushing = asyncio.create_task(self._flush(first))

    async def marker(self) -> str:
        """Append an entry that says only "this point"; replay stops there. The first marker a
        writer publishes is its start-up marker: `located` gives its offset."""
        marker = new_id()
        if self._pending:  # everything before "this point" is written before it, lazy or not
            self._lazy_due = True
            self._start_flush()
        if self._flushing is not None:
            await asyncio.shield(self._flushing)
        batch = await self._open()
        await self._emit(batch, self.seq, self.seq, [], [], marker=marker).confirmation
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

    async def _open(self) -> PublishBatch:
        """The write path on the journal channel (aiormq's own, not aio-pika's)."""
        channel = await self.channel.get_underlay_channel()
        if self._batch is None or self._batch.channel is not channel:
            self._batch = PublishBatch(channel, PUBLISH_TIMEOUT)
        return self._batch

    async def _flush(self, write: _Write | None) -> None:
        """Await each write's confirms, then publish what waited meanwhile, one write in flight."""
        try:
            while True:
                if write is None:
                    write = self._emit_waiting(await self._open())
                    if write is None:
                        break
                await write.confirmation
                if write.done:
                    self.batches.append((write.first, write.last, write.index))
                for seq, future in write.done:
                    if not future.done():
                        future.set_result(seq)
                assert self._batch is not None  # the write was published through it
                self.history.copy(self._batch, write.last, write.history)
                write = None
        except BaseException as exc:
            self._abandon(exc, write)
            return
        if (self._notes or self._pending) and not self._lazy_due:
            self._write_lazily()  # lazy, and appended or noted while the last write was in flight

    async def release_history(
        self, missing: Sequence[HistoryRecord], through: int, said: int
    ) -> None:
        """Copy `missing` to the history (what it lacked of the entries through `through` when
        this writer began; it said it was complete through `said`), then the records of this
        writer's entries as they are confirmed."""
        self.history.release(await self._open(), missing, through, said)

    def fail(self, exc: BaseException) -> None:
        """Give up: this writer (or its history copy) can no longer be trusted."""
        self._abandon(exc, None)

    def _abandon(self, exc: BaseException, write: _Write | None) -> None:
        """Nothing after a lost entry may be written: the session ends and state is rebuilt."""
        self._fail(exc)
        waiting = [*(write.done if write is not None else [])]
        waiting += [(seq, future) for seq, _, future, _ in self._pending]
        for _, future in waiting:
            if not future.done():
                future.set_exception(JournalFailed(f"the journal write failed: {exc}"))
        self._pending = []

    def _emit_waiting(self, batch: PublishBatch | None = None) -> _Write | None:
        """Publish the pending entries (or, once due, the notes alone), now; None if nothing is
        due. Lazy entries alone wait for an entry to ride with, or for their delay: written
        after each confirm, they made a stream message of their own that the next decision's
        entry, one write in flight at a time, had to wait behind."""
        batch = batch or self._batch
        assert batch is not None
        if self._pending and (self._eager or self._lazy_due):
            if self._lazy_write is not None:
                self._lazy_write.cancel()  # the lazy entries ride with this write
                self._lazy_write = None
            taken, self._pending = (
                self._pending[:MAX_ENTRIES_PER_MESSAGE],
                self._pending[MAX_ENTRIES_PER_MESSAGE:],
            )
            if not self._pending:
                self._eager = False
                if not self._notes:
                    self._lazy_due = False  # nothing lazy is left
            return self._emit(
                batch,
                taken[0][0],
                taken[-1][0],
                [(seq, records) for seq, records, _, _ in taken],
                [(seq, future) for seq, _, future, _ in taken],
                history=[record for *_, history in taken for record in history],
            )
        if self._notes and self._lazy_due:  # an entry of their own, changing nothing
            notes, self._notes, self._lazy_due = self._notes, [], False
            self.seq += 1
            seq = self.seq
            alone: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            alone.add_done_callback(_retrieved)  # nobody waits for it
            return self._emit(batch, seq, seq, [(seq, [])], [(seq, alone)], history=notes)
        return None

    def _emit(
        self,
        batch: PublishBatch,
        first: int,
        last: int,
        entries: list[Any],
        done: list[tuple[int, asyncio.Future[int]]],
        marker: str | None = None,
        *,
        history: Sequence[HistoryRecord] = (),
    ) -> _Write:
        """Publish one journal message (with the history records it carries) in this turn."""
        # orjson: a group commit of a burst is thousands of records, and the stdlib encoder was
        # a twentieth of the service's time; datetimes pass to `str` as `json.dumps` gave them.
        message: dict[str, Any] = {
            "first": first,
            "last": last,
            "entries": entries,
            "marker": marker,
        }
        if history:
            message["history"] = history
        body = orjson.dumps(message, default=str, option=orjson.OPT_PASSTHROUGH_DATETIME)
        index = self._written
        self._written += 1
        confirmation = batch.publish(
            "", JOURNAL, body, _ENTRY_PROPERTIES, message_id=None, mandatory=False
        )
        batch.flush()  # someone waits on it: not behind the rest of the turn
        return _Write(first, last, index, done, history, confirmation)

    def _fail(self, exc: BaseException) -> None:
        if self.failed is None:
            self.failed = exc
            if self.on_failure is not None:
                self.on_failure(exc)

    async def drain(self) -> None:
        if self._pending or self._notes:
            self._lazy_due = True  # lazy entries and notes too
            self._start_flush()
        if self._flushing is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._flushing), PUBLISH_TIMEOUT)
        if self._batch is not None and self.failed is None:
            self.history.flush()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.history.settled(), PUBLISH_TIMEOUT)
            indexed = self.history.close_index(self._batch)
            if indexed is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(indexed), PUBLISH_TIMEOUT)


def _retrieved(future: asyncio.Future[int]) -> None:
    """An entry nobody awaits: its failure is the writer's (`on_failure`), not a stray one."""
    if not future.cancelled():
        future.exception()
