"""The journal writer on the real broker: a lazy entry (a record that messages are out) rides
with the next entry, or goes on its own within `LAZY_WRITE_DELAY`; entries stay in order."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from mrwbus.bus.journal_stream import LAZY_WRITE_DELAY, JournalTail, JournalWriter
from mrwbus.bus.topology import declare_journal

pytestmark = pytest.mark.broker


async def test_a_lazy_entry_rides_with_the_next_or_goes_alone_soon(amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await declare_journal(channel)
        tail = JournalTail()
        await tail.follow(await connection.channel(), 0)
        writer = JournalWriter(channel, last_seq=0)

        lazy = writer.append([("decided", "mrw1/f-1", {"confirmed": True})], lazy=True)
        await asyncio.sleep(0)  # a turn in which an eager entry would have started its write
        urgent = writer.append([("decided", "mrw1/f-2", {"confirmed": False})])
        assert await asyncio.wait_for(asyncio.gather(lazy, urgent), 10) == [1, 2]
        assert await tail.offset_of(2, timeout=10) is not None
        assert [(first, last) for first, last, _ in tail.batches] == [(1, 2)]  # one message

        alone = writer.append([("decided", "mrw1/f-2", {"confirmed": True})], lazy=True)
        assert await asyncio.wait_for(alone, LAZY_WRITE_DELAY + 5) == 3
        assert await tail.offset_of(3, timeout=10) is not None
        assert [(first, last) for first, last, _ in tail.batches] == [(1, 2), (3, 3)]
