"""The history stream, written: copied from the journal, a few messages a second.

`mrwbus.history` is a stream of messages, each `{"v": 1, "s": SESSION, "n": N, "j": SEQ,
"records": [...]}`: history records (`core.history`) in the order the state changed, and `j`,
the journal entry through which the history now holds every record. Each journal message
carries the history records of its entries (`bus.journal_writer`): they are as durable as the
decision before anything it caused is published. Once the journal confirmed them they are
copied here (`HistoryOut.copy`), together with whatever else the journal confirms within
`COPY_DELAY`: one more stream message per journal write cost the loaded failover median about
a tenth of its time (docs/performance.md). A new active replica copies from the journal what
the newest `j` says the history lacks (`service.persistence`), before anything new, so the
history misses nothing the journal holds and holds nothing the journal does not.

`mrwbus.history.index` makes one fault quick to find among millions: every `INDEX_EVERY`
faults or `INDEX_SECONDS`, whichever comes first, a message `{"v": 1, "s": SESSION, "first":
N0, "last": N1, "from": T0, "to": T1, "ids": BASE64}` (4 bytes of each fault id's hash,
`fault_digest`) says which faults the history
messages N0..N1 of that writer's session hold, written between the wall-clock times T0 and T1
(`bus.history_reader.locate_fault` reads it: the time finds the stretch, the numbers the exact
offset, since one writer's messages take consecutive offsets).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any
from uuid import uuid4

import orjson

from mrwbus.bus.frames import json_properties
from mrwbus.bus.publish_batch import Confirmation, PublishBatch
from mrwbus.bus.topology import HISTORY, HISTORY_INDEX

log = logging.getLogger(__name__)

HistoryRecord = dict[str, Any]
"""One record (`core.history` builds them; the stream only carries them)."""
FORMAT_VERSION = 1
"""`v` of every history and index message; a reader skips a version it does not know."""

COPY_DELAY = 0.05
"""Seconds confirmed records wait for more to be copied with them."""
COPY_RECORDS = 2_000
"""Records copied in one message at most (a burst's are copied at once)."""
INDEX_EVERY = 5_000
"""Faults per index message at most."""
DIGEST_SIZE = 4
INDEX_SECONDS = 600.0
"""Seconds an index message covers at most (written even without faults, so the part of the
history that no index message covers yet stays short)."""

_PROPERTIES = json_properties(None, "", None)
"""A history message's: persistent JSON, nothing else."""


def fault_digest(fault_id: str) -> bytes:
    """What the index keeps of a fault id: 4 bytes of its BLAKE2b hash. Among a million faults
    an id not there matches one by chance once in about 4,000 lookups, which costs only a read
    of the stretch named."""
    return hashlib.blake2b(fault_id.encode(), digest_size=DIGEST_SIZE).digest()


def holds(ids: str, fault_id: str) -> bool:
    """Whether an index message's `ids` names `fault_id`."""
    digests = base64.b64decode(ids)
    wanted = fault_digest(fault_id)
    at = digests.find(wanted)
    while at != -1:
        if at % DIGEST_SIZE == 0:
            return True
        at = digests.find(wanted, at + 1)
    return False


def encode(
    records: Sequence[HistoryRecord], session: str = "", number: int = 0, through: int = 0
) -> bytes:
    """A history message: its writer's session and its number in that session (the index
    names them, so a reader can go to its offset), the journal entry it completes the history
    through, and the records."""
    return orjson.dumps(
        {"v": FORMAT_VERSION, "s": session, "n": number, "j": through, "records": records},
        default=str,
    )


def copied_through(body: bytes) -> int:
    """`j` of a history message: the journal entry through which the history was complete."""
    data = orjson.loads(body)
    return int(data.get("j") or 0) if isinstance(data, dict) else 0


def decode(body: bytes) -> list[HistoryRecord]:
    """The records of one history message; [] for a version this reader does not know."""
    data = orjson.loads(body)
    if not isinstance(data, dict) or data.get("v") != FORMAT_VERSION:
        return []
    records: list[HistoryRecord] = data.get("records") or []
    return records


class HistoryOut:
    """Copies history records the journal confirmed to the stream, and keeps the index.

    `copy` is told of every confirmed journal message, in order; records wait `COPY_DELAY` for
    more, then go as one message (`flush`). A new session's copier is `held` until the records
    the history lacks are copied ahead of everything new (`release`)."""

    def __init__(self, clock: Any = time.time, *, held: bool = False) -> None:
        self._clock = clock
        self.session = uuid4().hex[:12]
        """This writer's messages are numbered from 0 in this session, in offset order."""
        self._ids: list[bytes] = []
        self._first = 0
        self._from: float | None = None
        self._to = 0.0
        self.written = 0
        """History messages published (for tests and the benchmarks)."""
        self.recent: RecentHistory | None = None
        """Where confirmed messages go too (the status page's history view)."""
        self.on_failure: Callable[[BaseException], None] | None = None
        """Told when a copy was not confirmed: the records are still in the journal, and the
        next session copies them (the session ends)."""
        self._held = held
        self._batch: PublishBatch | None = None
        self._queued: list[HistoryRecord] = []
        self._journaled = 0
        """The newest journal entry confirmed and handed to `copy`."""
        self._confirmed = 0
        """`j` of the newest copy the broker confirmed."""
        self._said = 0
        """`j` of the newest copy published."""
        self._in_flight: set[Confirmation] = set()
        self._lost = False
        """A copy was not confirmed: the history is complete no further in this session."""
        self._timer: asyncio.TimerHandle | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    @property
    def complete_through(self) -> int:
        """The journal entry through which the stream holds every history record."""
        if self._queued or self._in_flight or self._held or self._lost:
            return self._confirmed
        return max(self._confirmed, self._journaled)

    def copy(self, batch: PublishBatch, through: int, records: Sequence[HistoryRecord]) -> None:
        """The journal confirmed its entries through `through`, carrying `records`: copy them
        within `COPY_DELAY` (at once past `COPY_RECORDS`)."""
        self._batch = batch
        self._journaled = max(self._journaled, through)
        self._queued.extend(records)
        if len(self._queued) >= COPY_RECORDS:
            self.flush()
        elif self._queued and self._timer is None and not self._held:
            self._timer = asyncio.get_running_loop().call_later(COPY_DELAY, self.flush)
        self._wake()

    def release(
        self, batch: PublishBatch, missing: Sequence[HistoryRecord], through: int, said: int = 0
    ) -> None:
        """Copy `missing` (what the history lacked of the journal's entries through `through`
        when this session began; it was complete through `said`), then go on."""
        self._batch = batch
        self._held = False
        self._said = said
        self._journaled = max(self._journaled, through)
        self._queued[:0] = missing
        self.flush()

    def flush(self) -> Confirmation | None:
        """Copy what is queued now, in as few messages as `COPY_RECORDS` allows; the last one's
        confirmation, None when nothing is (or may be) copied."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._held or self._batch is None:
            return None
        if not self._queued:
            self._wake()
            return None
        queued, self._queued = self._queued, []
        confirmation = None
        for start in range(0, len(queued), COPY_RECORDS):
            # A long backlog (a new session's) goes in several messages; only the last says the
            # history is complete through the newest entry, the others what it was before.
            last = start + COPY_RECORDS >= len(queued)
            through = self._journaled if last else self._said
            confirmation = self._publish(self._batch, queued[start : start + COPY_RECORDS], through)
            self._said = through
            self._in_flight.add(confirmation)
            confirmation.add_done_callback(partial(self._copied, through))
        return confirmation

    async def complete(self, seq: int) -> None:
        """Return once the stream holds every history record through journal entry `seq`."""
        if self.complete_through >= seq:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((seq, waiter))
        await waiter

    async def settled(self) -> None:
        """Wait for the copies in flight (a graceful stop, after `flush`)."""
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    def _copied(self, through: int, confirmation: Confirmation) -> None:
        self._in_flight.discard(confirmation)
        failed = confirmation.exception() if not confirmation.cancelled() else None
        if confirmation.cancelled() or failed is not None:
            self._lost = True
            if self.on_failure is not None:
                self.on_failure(failed or asyncio.CancelledError())
            return
        self._confirmed = max(self._confirmed, through)
        self._wake()

    def _wake(self) -> None:
        complete = self.complete_through
        waiting = []
        for seq, waiter in self._waiters:
            if seq <= complete:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                waiting.append((seq, waiter))
        self._waiters = waiting

    def _publish(
        self, batch: PublishBatch, records: Sequence[HistoryRecord], through: int
    ) -> Confirmation:
        """Queue `records` as one message in the batch's current write."""
        now = self._clock()
        if self._from is None:
            self._from, self._first = now, self.written
        body = encode(records, self.session, self.written, through)
        confirmation = batch.publish(
            "", HISTORY, body, _PROPERTIES, message_id=None, mandatory=False
        )
        self.written += 1
        self._to = now
        if self.recent is not None:
            confirmation.add_done_callback(partial(_confirmed, self.recent, body, len(records)))
        self._ids.extend(
            fault_digest(record["fault"]["id"]) for record in records if record.get("k") == "fault"
        )
        if len(self._ids) >= INDEX_EVERY or now - self._from >= INDEX_SECONDS:
            self.close_index(batch)
        return confirmation

    def close_index(self, batch: PublishBatch) -> Confirmation | None:
        """Write the index message of what was written since the last one (lazily: the index
        only speeds reading up, and a reader scans what it does not cover)."""
        if self._from is None:
            return None
        body = orjson.dumps(
            {
                "v": FORMAT_VERSION,
                "s": self.session,
                "first": self._first,
                "last": self.written - 1,
                "from": self._from,
                "to": self._to,
                "ids": base64.b64encode(b"".join(self._ids)).decode(),
            }
        )
        self._ids, self._from = [], None
        confirmation = batch.publish(
            "", HISTORY_INDEX, body, _PROPERTIES, message_id=None, mandatory=False
        )
        confirmation.add_done_callback(_quiet)
        return confirmation


class RecentHistory:
    """The newest history records written, for the status page, kept as the messages' bodies
    and decoded only when asked. Kept as dictionaries, 2,000 records were tens of thousands of
    objects that every full garbage collection walked: under 200 faults/s that alone took a
    failover's p99 from 1.3x to 2x the bare script's (docs/performance.md)."""

    def __init__(self, records: int) -> None:
        self.records = records
        """At least this many of the newest records are kept (whole messages)."""
        self._messages: deque[tuple[int, bytes]] = deque()
        self._held = 0

    def add(self, body: bytes, count: int) -> None:
        self._messages.append((count, body))
        self._held += count
        while self._held - self._messages[0][0] >= self.records:
            self._held -= self._messages.popleft()[0]

    def newest_first(self) -> Iterator[HistoryRecord]:
        for _, body in reversed(self._messages):
            yield from reversed(decode(body))


def _confirmed(recent: RecentHistory, body: bytes, count: int, future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is None:
        recent.add(body, count)


def _quiet(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("history index not written: %s", future.exception())
