"""The service's state, journaled in RabbitMQ: recovered at start, appended to as it changes.

Glue between the pure records (`core.records`) and the transport (`bus.journal_stream`): every change
to the cluster state is appended to the journal before the messages it caused are published,
and snapshots keep start-up time bounded however long the journal grows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aio_pika.abc import AbstractChannel

from mrwbus.bus.history_reader import history_complete_through
from mrwbus.bus.history_stream import HistoryOut, HistoryRecord
from mrwbus.bus.journal_stream import (
    Batch,
    Snapshot,
    entry_from,
    load_snapshot,
    replay,
    save_snapshot,
)
from mrwbus.bus.journal_writer import JournalWriter
from mrwbus.config.model import ClusterConfig
from mrwbus.core.cluster import ClusterState
from mrwbus.core.decision import CONFIRMED, Decision
from mrwbus.core.records import (
    ChangeTracker,
    Record,
    RecordSet,
    RestoredState,
    decided_record,
    outbox_records,
)

log = logging.getLogger(__name__)

SNAPSHOT_EVERY = 10_000
"""Journal entries between snapshots: the most a start-up replays."""
HISTORY_WAIT = 30.0
"""Seconds a snapshot waits for the history to hold every record it covers; then it is skipped."""
Carried = list[tuple[int, list[HistoryRecord]]]
"""History records the replayed journal messages carry: (the message's last entry, records)."""


@dataclass(frozen=True)
class Recovery:
    """How a start-up went: for the log, and for operators timing a takeover."""

    snapshot_seq: int
    replayed_entries: int
    seconds: float


class StateJournal:
    def __init__(
        self,
        writer: JournalWriter,
        records: RecordSet,
        tracker: ChangeTracker,
        channel: AbstractChannel,
        check_channel: AbstractChannel,
        last_snapshot_seq: int,
        snapshot_every: int = SNAPSHOT_EVERY,
    ) -> None:
        self.writer = writer
        self.records = records
        self.tracker = tracker
        self.channel = channel
        self.check_channel = check_channel
        self.last_snapshot_seq = last_snapshot_seq
        self.snapshot_every = snapshot_every
        self._snapshotting: asyncio.Task[None] | None = None
        self._completing: asyncio.Task[None] | None = None

    @classmethod
    async def recover(
        cls,
        config: ClusterConfig,
        channel: AbstractChannel,
        replay_channel: AbstractChannel,
        check_channel: AbstractChannel,
        *,
        snapshot_every: int = SNAPSHOT_EVERY,
    ) -> tuple[StateJournal, RestoredState, Recovery]:
        """Rebuild the state: the newest snapshot, then every entry after it (the whole journal
        when the snapshot's offset turns out not to follow it)."""
        started = time.monotonic()
        snapshot = await load_snapshot(channel)
        # Held: what the history lacks is copied first (`_complete_history`).
        writer = JournalWriter(channel, snapshot.seq if snapshot else 0, HistoryOut(held=True))
        marker = await writer.marker()
        records, applied, replayed, marker_offset, carried = await _replay(
            replay_channel, marker, snapshot
        )
        if marker_offset is None:
            log.warning(
                "the snapshot at entry %d names an offset past entries it does not hold: "
                "replaying the whole journal",
                snapshot.seq if snapshot else 0,
            )
            snapshot = None
            records, applied, replayed, marker_offset, carried = await _replay(
                replay_channel, marker, None
            )
            assert marker_offset is not None  # from the start, nothing can be skipped
        writer.seq = applied
        writer.located(marker_offset)
        restored = records.restore(config)
        journal = cls(
            writer,
            records,
            ChangeTracker.starting_from(restored.cluster),
            channel,
            check_channel,
            snapshot.seq if snapshot else 0,
            snapshot_every,
        )
        # Not awaited: the first decision need not wait for the history's newest message.
        journal._completing = asyncio.create_task(
            journal._complete_history(carried, snapshot.seq if snapshot else 0, applied)
        )
        recovery = Recovery(snapshot.seq if snapshot else 0, replayed, time.monotonic() - started)
        log.info(
            "state recovered: snapshot at entry %d, %d entries replayed, %.3f s",
            recovery.snapshot_seq,
            recovery.replayed_entries,
            recovery.seconds,
        )
        return journal, restored, recovery

    @property
    def failed(self) -> bool:
        """A journal write failed: the state in memory may be ahead of the journal."""
        return self.writer.failed is not None

    # --- appending: each call fixes the entry's place at once; await the future for the confirm

    def append(
        self, records: list[Record], *, lazy: bool = False, history: Sequence[HistoryRecord] = ()
    ) -> asyncio.Future[int]:
        self.records.apply(records)
        future = self.writer.append(records, lazy=lazy, history=history)
        if self.writer.seq - self.last_snapshot_seq >= self.snapshot_every:
            self._start_snapshot()
        return future

    def decision(
        self,
        cluster: ClusterState,
        monitor: str,
        fault_id: str,
        decision: Decision,
        *,
        shared: bool,
        history: Sequence[HistoryRecord] = (),
    ) -> asyncio.Future[int]:
        """A fault's decision: the monitor's new state, what else changed, and its messages."""
        changes = self.tracker.changes(cluster, shared=shared)
        return self.append([*changes, decided_record(monitor, fault_id, decision)], history=history)

    def confirmed(self, monitor: str, fault_id: str) -> asyncio.Future[int]:
        # Lazy: losing it only means a republish with the same ids, and written at once it
        # made the next fault's entry wait a stream confirm longer.
        return self.append([decided_record(monitor, fault_id, CONFIRMED)], lazy=True)

    def reaction(
        self,
        cluster: ClusterState,
        reaction_id: str,
        decision: Decision | None,
        history: Sequence[HistoryRecord] = (),
        *,
        lazy: bool = False,
    ) -> asyncio.Future[int]:
        """A result, report, tick or operator request: what changed, and the messages pending;
        `lazy`: ride with the next entry (`JournalWriter.append`)."""
        records = self.tracker.changes(cluster)
        if decision is not None:
            records += outbox_records(reaction_id, decision)
        if not records:
            for record in history:  # nothing changed: the history still says it came
                self.writer.note(record)
            done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            done.set_result(self.writer.seq)
            return done
        return self.append(records, history=history, lazy=lazy)

    def reaction_done(self, reaction_id: str) -> asyncio.Future[int]:
        return self.append(list(outbox_records(reaction_id, None)), lazy=True)

    async def _complete_history(self, carried: Carried, snapshot_seq: int, applied: int) -> None:
        """Copy to the history what the journal replayed (through entry `applied`) carries and
        it lacks (the last replica's copies not yet made when it stopped), ahead of anything
        new. What a snapshot covers is in the history already: it was saved only once it was."""
        missing: list[HistoryRecord] = []
        complete = snapshot_seq
        try:
            if carried:
                complete = max(await history_complete_through(self.check_channel), snapshot_seq)
                missing = [record for last, found in carried if last > complete for record in found]
            await self.writer.release_history(missing, applied, complete)
        except Exception as exc:  # the next session tries again: the journal keeps them
            self.writer.fail(exc)
            return
        if missing:
            log.info("history completed from the journal: %d records", len(missing))

    # --- snapshots ------------------------------------------------------------------------

    def _start_snapshot(self) -> None:
        if self._snapshotting is not None and not self._snapshotting.done():
            return
        seq = self.writer.seq
        self.last_snapshot_seq = seq
        # Taken now, in the same step as reading `seq`: exactly the state after entry `seq`.
        records = self.records.export()
        self._snapshotting = asyncio.create_task(
            self._save_snapshot(seq, records, self.writer.last_entry())
        )

    async def _save_snapshot(
        self, seq: int, records: dict[str, dict[str, object]], written: asyncio.Future[int] | None
    ) -> None:
        if written is not None:
            try:
                await asyncio.shield(written)
            except Exception:  # the session ends with the journal; the next one snapshots
                return
        try:
            # A start-up from this snapshot replays nothing before it: the history must hold
            # everything the entries before it carried (the copy follows within `COPY_DELAY`).
            await asyncio.wait_for(self.writer.history.complete(seq), HISTORY_WAIT)
        except TimeoutError:
            log.warning("snapshot at entry %d skipped: the history is not complete to it", seq)
            return
        offset = self.writer.offset_of(seq)
        try:
            # Counted, then checked: the message there must hold the entry before a start-up
            # relies on it (it may lie a little further on than counted: `entry_from`).
            batch = (
                await entry_from(self.check_channel, offset, seq) if offset is not None else None
            )
            if offset is None or batch is None:
                log.warning("snapshot at entry %d skipped: its journal offset is not known", seq)
                return
            self.writer.recount(offset, batch.offset)
            await save_snapshot(self.channel, Snapshot(seq, batch.offset, records))
            log.info("snapshot saved at entry %d (offset %d)", seq, batch.offset)
        except Exception as exc:  # the next one will do; the journal still has everything
            log.warning("snapshot at entry %d not saved: %s", seq, exc)
            return
        if self.writer.seq - seq >= self.snapshot_every:
            # The journal ran ahead while this one was saved: the next is due already.
            self._snapshotting = None
            self._start_snapshot()

    async def settle(self) -> None:
        """Wait until no snapshot is being taken (tests and a graceful stop)."""
        while self._snapshotting is not None and not self._snapshotting.done():
            await asyncio.gather(self._snapshotting, return_exceptions=True)

    async def close(self) -> None:
        await self.writer.drain()
        for task in (self._snapshotting, self._completing):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


async def _replay(
    channel: AbstractChannel, marker: str, snapshot: Snapshot | None
) -> tuple[RecordSet, int, int, int | None, Carried]:
    """The records after the journal up to `marker`, from `snapshot` on; the last entry applied,
    the entries replayed, the marker's offset (None: the snapshot's offset skips entries) and
    the history records the messages after the snapshot carry."""
    records = RecordSet(snapshot.records if snapshot else None)
    applied = snapshot.seq if snapshot else 0
    replayed = 0
    gap = False
    carried: Carried = []

    def apply(batch: Batch) -> None:
        nonlocal applied, replayed, gap
        if batch.history and batch.last > applied:
            carried.append((batch.last, batch.history))
        for seq, entry in batch.entries:
            if seq <= applied:  # the snapshot's batch may hold entries it already has
                continue
            if snapshot is not None and seq != applied + 1:
                gap = True  # entries the snapshot lacks lie before its offset
            if not gap:
                records.apply(entry)
                applied = seq
                replayed += 1

    offset = await replay(channel, snapshot.offset if snapshot else "first", marker, apply)
    return records, applied, replayed, None if gap else offset, carried
