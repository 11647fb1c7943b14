"""The service's state, journaled in RabbitMQ: recovered at start, appended to as it changes.

Glue between the pure records (`core.records`) and the transport (`bus.journal_stream`): every change
to the cluster state is appended to the journal before the messages it caused are published,
and snapshots keep start-up time bounded however long the journal grows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from aio_pika.abc import AbstractChannel

from mrwbus.bus.journal_stream import (
    JournalTail,
    JournalWriter,
    Snapshot,
    load_snapshot,
    replay,
    save_snapshot,
)
from mrwbus.config import ClusterConfig
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
        tail: JournalTail,
        channel: AbstractChannel,
        last_snapshot_seq: int,
        snapshot_every: int = SNAPSHOT_EVERY,
    ) -> None:
        self.writer = writer
        self.records = records
        self.tracker = tracker
        self.tail = tail
        self.channel = channel
        self.last_snapshot_seq = last_snapshot_seq
        self.snapshot_every = snapshot_every
        self._snapshotting: asyncio.Task[None] | None = None

    @classmethod
    async def recover(
        cls,
        config: ClusterConfig,
        channel: AbstractChannel,
        replay_channel: AbstractChannel,
        tail_channel: AbstractChannel,
        *,
        snapshot_every: int = SNAPSHOT_EVERY,
    ) -> tuple[StateJournal, RestoredState, Recovery]:
        """Rebuild the state: the newest snapshot, then every entry after it."""
        started = time.monotonic()
        snapshot = await load_snapshot(channel)
        records = RecordSet(snapshot.records if snapshot else None)
        applied = snapshot.seq if snapshot else 0
        replayed = 0
        writer = JournalWriter(channel, applied)
        marker = await writer.marker()

        def apply(batch_entries: list[tuple[int, list[Record]]]) -> None:
            nonlocal applied, replayed
            for seq, entry in batch_entries:
                if seq > applied:  # the snapshot's batch may hold entries it already has
                    records.apply(entry)
                    applied = seq
                    replayed += 1

        marker_offset = await replay(
            replay_channel,
            snapshot.offset if snapshot else "first",
            marker,
            lambda batch: apply(batch.entries),
        )
        writer.seq = applied
        restored = records.restore(config)
        tail = JournalTail()
        await tail.follow(tail_channel, marker_offset + 1)
        journal = cls(
            writer,
            records,
            ChangeTracker.starting_from(restored.cluster),
            tail,
            channel,
            snapshot.seq if snapshot else 0,
            snapshot_every,
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

    def append(self, records: list[Record], *, lazy: bool = False) -> asyncio.Future[int]:
        self.records.apply(records)
        future = self.writer.append(records, lazy=lazy)
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
    ) -> asyncio.Future[int]:
        """A fault's decision: the monitor's new state, what else changed, and its messages."""
        changes = self.tracker.changes(cluster, shared=shared)
        return self.append([*changes, decided_record(monitor, fault_id, decision)])

    def confirmed(self, monitor: str, fault_id: str) -> asyncio.Future[int]:
        # Lazy: losing it only means a republish with the same ids, and written at once it
        # made the next fault's entry wait a stream confirm longer.
        return self.append([decided_record(monitor, fault_id, CONFIRMED)], lazy=True)

    def reaction(
        self, cluster: ClusterState, reaction_id: str, decision: Decision | None
    ) -> asyncio.Future[int]:
        """A result, report, tick or operator request: what changed, and the messages pending."""
        records = self.tracker.changes(cluster)
        if decision is not None:
            records += outbox_records(reaction_id, decision)
        if not records:
            done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            done.set_result(self.writer.seq)
            return done
        return self.append(records)

    def reaction_done(self, reaction_id: str) -> asyncio.Future[int]:
        return self.append(list(outbox_records(reaction_id, None)), lazy=True)

    # --- snapshots ------------------------------------------------------------------------

    def _start_snapshot(self) -> None:
        if self._snapshotting is not None and not self._snapshotting.done():
            return
        seq = self.writer.seq
        self.last_snapshot_seq = seq
        # Taken now, in the same step as reading `seq`: exactly the state after entry `seq`.
        records = self.records.export()
        self._snapshotting = asyncio.create_task(self._save_snapshot(seq, records))

    async def _save_snapshot(self, seq: int, records: dict[str, dict[str, object]]) -> None:
        offset = await self.tail.offset_of(seq)
        if offset is None:
            log.warning(
                "snapshot at entry %d skipped: its journal offset was not seen in time", seq
            )
            return
        try:
            await save_snapshot(self.channel, Snapshot(seq, offset, records))
            log.info("snapshot saved at entry %d (offset %d)", seq, offset)
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
        if self._snapshotting is not None:
            self._snapshotting.cancel()
            await asyncio.gather(self._snapshotting, return_exceptions=True)
