"""The journal writer on the real broker: a lazy entry (a record that messages are out) rides
with the next entry, or goes on its own within `LAZY_WRITE_DELAY`; entries stay in order; a
history note with no entry to ride with goes in an entry of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aio_pika
import pytest
from aio_pika.abc import AbstractConnection

from mrwbus.bus.journal_stream import entries_at
from mrwbus.bus.journal_writer import LAZY_WRITE_DELAY, JournalWriter
from mrwbus.bus.topology import declare_journal
from mrwbus.errors import JournalFailed

pytestmark = pytest.mark.broker


@pytest.fixture
async def connection(amqp_url: str) -> AsyncIterator[AbstractConnection]:
    async with await aio_pika.connect(amqp_url) as opened:
        yield opened


async def started_writer(connection: AbstractConnection) -> JournalWriter:
    """A writer on a fresh journal, its start-up marker written (as a replica starts)."""
    channel = await connection.channel(publisher_confirms=True)
    await declare_journal(channel)
    writer = JournalWriter(channel, last_seq=0)
    await writer.marker()
    return writer


async def test_a_lazy_entry_rides_with_the_next_or_goes_alone_soon(
    connection: AbstractConnection,
) -> None:
    writer = await started_writer(connection)
    writer.located(0)  # a fresh journal: the marker is its first message

    lazy = writer.append([("decided", "mrw1/f-1", {"confirmed": True})], lazy=True)
    await asyncio.sleep(0)  # a turn in which an eager entry would have started its write
    urgent = writer.append([("decided", "mrw1/f-2", {"confirmed": False})])
    assert list(await asyncio.wait_for(asyncio.gather(lazy, urgent), 10)) == [1, 2]
    assert [(first, last) for first, last, _ in writer.batches] == [(1, 2)]  # one message

    alone = writer.append([("decided", "mrw1/f-2", {"confirmed": True})], lazy=True)
    assert await asyncio.wait_for(alone, LAZY_WRITE_DELAY + 5) == 3
    assert [(first, last) for first, last, _ in writer.batches] == [(1, 2), (3, 3)]
    # Counted offsets name the messages the broker holds.
    for seq, offset in ((2, 1), (3, 2)):
        assert writer.offset_of(seq) == offset
        held = await entries_at(await connection.channel(), offset)
        assert held.first <= seq <= held.last


async def test_a_lazy_entry_appended_during_a_write_waits_for_the_next_entry(
    connection: AbstractConnection,
) -> None:
    """Not written alone right after the write in flight: that message would hold the next
    decision's entry back by a stream confirm of its own."""
    writer = await started_writer(connection)
    first = writer.append([("decided", "mrw1/f-1", {"confirmed": False})])  # in flight
    lazy = writer.append([("decided", "mrw1/f-1", {"confirmed": True})], lazy=True)
    assert await asyncio.wait_for(first, 10) == 1
    await asyncio.sleep(LAZY_WRITE_DELAY / 4)  # well within its delay: still waiting
    assert not lazy.done()
    urgent = writer.append([("decided", "mrw1/f-2", {"confirmed": False})])
    assert list(await asyncio.wait_for(asyncio.gather(lazy, urgent), 10)) == [2, 3]
    assert [(first, last) for first, last, _ in writer.batches] == [(1, 1), (2, 3)]

    left = writer.append([("decided", "mrw1/f-2", {"confirmed": True})], lazy=True)
    assert await asyncio.wait_for(left, LAZY_WRITE_DELAY + 5) == 4  # alone, within its delay
    assert [(first, last) for first, last, _ in writer.batches][-1] == (4, 4)


async def test_a_failed_write_is_told_once_and_fails_every_later_entry_at_once(
    connection: AbstractConnection,
) -> None:
    writer = await started_writer(connection)
    told: list[BaseException] = []
    writer.on_failure = told.append  # the service ends its session here
    await writer.channel.close()  # the broker closed the journal's channel, say

    first = writer.append([("decided", "mrw1/f-1", {"confirmed": False})])
    with pytest.raises(JournalFailed):
        await asyncio.wait_for(first, 10)
    assert len(told) == 1 and writer.failed is told[0]
    later = writer.append([("decided", "mrw1/f-2", {"confirmed": False})])
    assert later.done() and isinstance(later.exception(), JournalFailed)
    assert len(told) == 1  # told once: the session ends once


async def test_a_note_left_behind_by_a_write_still_goes_within_the_lazy_delay(
    connection: AbstractConnection,
) -> None:
    writer = await started_writer(connection)
    writer.located(0)  # a fresh journal: the marker is its first message
    first = writer.append([("decided", "mrw1/f-1", {"confirmed": False})])  # in flight
    second = writer.append([("decided", "mrw1/f-2", {"confirmed": False})])  # waits
    # Noted after the second entry: the write that takes the second cannot take it.
    writer.note({"k": "fault", "fault": {"id": "f-3"}})
    assert list(await asyncio.wait_for(asyncio.gather(first, second), 10)) == [1, 2]
    await asyncio.sleep(LAZY_WRITE_DELAY + 1)
    assert writer.seq == 3  # the note, in an entry of its own
    held = await entries_at(await connection.channel(), writer.offset_of(3) or 0)
    assert held.entries == [(3, [])] and held.history == [{"k": "fault", "fault": {"id": "f-3"}}]
    assert writer.history.written == 1  # and copied to the history
