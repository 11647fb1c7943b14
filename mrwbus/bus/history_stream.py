"""The history stream, written: records ride the journal's own write.

`mrwbus.history` is a stream of messages, each `{"v": 1, "records": [...]}`: the history
records (`core.history`) of one journal group commit, in the order the state changed. The
journal writer (`bus.journal_writer.JournalWriter`) hands each of its batches' records here
and publishes them in the same `PublishBatch` write as the journal message, right after it, and
a journal entry counts as written only once both are confirmed: so nothing the service
published is missing from the history, and nothing is in it that the journal does not hold.

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
from collections.abc import Iterator, Sequence
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


def encode(records: Sequence[HistoryRecord], session: str = "", number: int = 0) -> bytes:
    """A history message: its writer's session and its number in that session (the index
    names them, so a reader can go to its offset), and the records."""
    return orjson.dumps(
        {"v": FORMAT_VERSION, "s": session, "n": number, "records": records}, default=str
    )


def decode(body: bytes) -> list[HistoryRecord]:
    """The records of one history message; [] for a version this reader does not know."""
    data = orjson.loads(body)
    if not isinstance(data, dict) or data.get("v") != FORMAT_VERSION:
        return []
    records: list[HistoryRecord] = data.get("records") or []
    return records


class HistoryOut:
    """Publishes history records in the journal writer's batch, and keeps the index."""

    def __init__(self, clock: Any = time.time) -> None:
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

    def publish(self, batch: PublishBatch, records: Sequence[HistoryRecord]) -> Confirmation | None:
        """Queue `records` as one message in the batch's current write (after whatever was
        queued before it in this turn); None when there is nothing to write."""
        if not records:
            return None
        now = self._clock()
        if self._from is None:
            self._from, self._first = now, self.written
        body = encode(records, self.session, self.written)
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
