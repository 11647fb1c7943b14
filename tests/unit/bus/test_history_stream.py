"""The history stream's messages as encoded, the fault index's digests, the recent records the
status page shows (kept encoded, decoded when asked), and the copier's bookkeeping: what it
copies together, how far the history is complete, and what a new session copies first."""

from __future__ import annotations

import asyncio
import base64
from typing import Any, cast

from mrwbus.bus.history_stream import (
    COPY_DELAY,
    COPY_RECORDS,
    HistoryOut,
    HistoryRecord,
    RecentHistory,
    copied_through,
    decode,
    encode,
    fault_digest,
    holds,
)
from mrwbus.bus.publish_batch import PublishBatch
from mrwbus.bus.topology import HISTORY


def _records(first: int, count: int) -> list[dict[str, object]]:
    return [{"k": "tick", "n": n} for n in range(first, first + count)]


def test_a_message_decodes_to_its_records_and_an_unknown_version_to_none() -> None:
    records = _records(0, 3)
    assert decode(encode(records, "s1", 7)) == records
    assert decode(b'{"v": 99, "records": [{"k": "tick"}]}') == []


def test_the_index_names_a_fault_by_its_digest_at_a_digest_boundary_only() -> None:
    digests = fault_digest("f-1") + fault_digest("f-2")
    ids = base64.b64encode(digests).decode()
    assert holds(ids, "f-1") and holds(ids, "f-2")
    assert not holds(ids, "f-3")
    straddling = base64.b64encode(digests[2:6]).decode()  # bytes of both, at no boundary
    assert not holds(straddling, "f-1") and not holds(straddling, "f-2")


def test_recent_history_keeps_at_least_the_newest_records_newest_first() -> None:
    recent = RecentHistory(records=5)
    for first in range(0, 12, 3):  # four messages of three records: 0-2, 3-5, 6-8, 9-11
        recent.add(encode(_records(first, 3)), 3)
    newest = [record["n"] for record in recent.newest_first()]
    assert newest == [11, 10, 9, 8, 7, 6]  # whole messages: at least 5, the oldest dropped
    assert list(RecentHistory(records=5).newest_first()) == []


class FakeBatch:
    """A `PublishBatch` that keeps what was published; the test confirms it."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, asyncio.Future[object]]] = []

    def publish(self, _: str, routing_key: str, body: bytes, *__: object, **___: object) -> Any:
        confirmation: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.published.append((routing_key, body, confirmation))
        return confirmation

    def history(self) -> list[tuple[int, list[HistoryRecord]]]:
        """(j, records) of each history message published."""
        return [
            (copied_through(body), decode(body))
            for key, body, _ in self.published
            if key == HISTORY
        ]

    def confirm_all(self) -> None:
        for *_, confirmation in self.published:
            if not confirmation.done():
                confirmation.set_result(None)


def copier(*, held: bool = False) -> tuple[HistoryOut, FakeBatch]:
    return HistoryOut(held=held), FakeBatch()


async def test_records_confirmed_within_the_copy_delay_are_copied_as_one_message() -> None:
    out, batch = copier()
    out.copy(cast(PublishBatch, batch), 3, _records(0, 2))
    out.copy(cast(PublishBatch, batch), 5, _records(2, 1))
    assert batch.history() == []  # waiting for more
    await asyncio.sleep(COPY_DELAY * 2)
    assert batch.history() == [(5, _records(0, 3))]
    assert out.complete_through == 0  # published, not confirmed
    batch.confirm_all()
    await asyncio.sleep(0)
    assert out.complete_through == 5


async def test_entries_without_history_are_complete_once_nothing_before_them_waits() -> None:
    out, batch = copier()
    out.copy(cast(PublishBatch, batch), 2, _records(0, 1))
    out.copy(cast(PublishBatch, batch), 4, [])  # carries nothing, but 2's records wait
    complete = asyncio.ensure_future(out.complete(4))
    out.flush()
    await asyncio.sleep(0)
    assert not complete.done()
    batch.confirm_all()
    await asyncio.wait_for(complete, 1)
    out.copy(cast(PublishBatch, batch), 6, [])  # nothing waits: complete at once
    assert out.complete_through == 6 and len(batch.history()) == 1


async def test_a_held_copier_copies_what_the_history_lacked_first() -> None:
    out, batch = copier(held=True)
    out.copy(cast(PublishBatch, batch), 12, _records(10, 1))  # this session's first entry
    await asyncio.sleep(COPY_DELAY * 2)
    assert batch.history() == [] and out.complete_through == 0
    out.release(cast(PublishBatch, batch), _records(0, 2), through=11)  # the last replica's
    assert batch.history() == [(12, [*_records(0, 2), *_records(10, 1)])]


async def test_a_copy_not_confirmed_is_told() -> None:
    out, batch = copier()
    told: list[BaseException] = []
    out.on_failure = told.append
    out.copy(cast(PublishBatch, batch), 1, _records(0, 1))
    out.flush()
    batch.published[0][2].set_exception(ConnectionError("channel closed"))
    await asyncio.sleep(0)
    assert len(told) == 1 and out.complete_through == 0


async def test_a_long_backlog_goes_in_several_messages_the_last_saying_complete() -> None:
    out, batch = copier(held=True)
    backlog = _records(0, COPY_RECORDS * 2 + 1)
    out.release(cast(PublishBatch, batch), backlog, through=90, said=40)
    copied = batch.history()
    assert [len(records) for _, records in copied] == [COPY_RECORDS, COPY_RECORDS, 1]
    assert [j for j, _ in copied] == [40, 40, 90]  # a crash in between: copied again from 40
    assert [record for _, records in copied for record in records] == backlog
