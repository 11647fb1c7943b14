"""The history copied from the journal on the real broker: each journal message carries its
entries' history records, the copies of many messages go as one, and a replica that starts
after a crash copies what its predecessor had journaled but not yet copied, exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractConnection

from mrwbus.bus import history_stream
from mrwbus.bus.history_reader import history_complete_through, read_history
from mrwbus.bus.journal_stream import entries_at, load_snapshot
from mrwbus.bus.topology import DEFAULT_HISTORY_MAX_AGE, declare_history, declare_journal
from mrwbus.config.loading import parse_config
from mrwbus.messages import utc_now
from mrwbus.service.persistence import StateJournal
from tests.integration.configs import two_servers_one_nic_monitor

pytestmark = pytest.mark.broker

CONFIG = parse_config(two_servers_one_nic_monitor())
EVERY = 20


@pytest.fixture
async def connection(amqp_url: str) -> AsyncIterator[AbstractConnection]:
    async with await aio_pika.connect(amqp_url) as opened:
        channel = await opened.channel()
        await declare_journal(channel)
        await declare_history(channel, DEFAULT_HISTORY_MAX_AGE)
        yield opened


async def start(connection: AbstractConnection) -> StateJournal:
    journal, _, _ = await StateJournal.recover(
        CONFIG,
        await connection.channel(publisher_confirms=True),
        await connection.channel(),
        await connection.channel(),
        snapshot_every=EVERY,
    )
    return journal


def noted(name: str) -> dict[str, Any]:
    return {"k": "tick", "name": name, "at": utc_now().isoformat()}


async def journal_with_history(journal: StateJournal, names: list[str]) -> None:
    """One entry per name, each carrying one history record, each awaited (a message each)."""
    for name in names:
        await journal.append([("tick", name, {"n": name})], history=[noted(name)])


async def history_of(connection: AbstractConnection) -> list[str]:
    names: list[str] = []

    def take(record: dict[str, Any]) -> bool:
        names.append(record["name"])
        return False  # read on to the end

    await read_history(connection, take)
    return names


async def test_copies_ride_together_and_say_how_far_the_history_is_complete(
    connection: AbstractConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = await start(connection)
    await asyncio.wait_for(journal.writer.history.complete(journal.writer.seq), 10)
    monkeypatch.setattr(history_stream, "COPY_DELAY", 1.0)  # all three within it, surely
    await journal_with_history(journal, ["a", "b", "c"])
    carried = await entries_at(await connection.channel(), journal.writer.offset_of(1) or 0)
    assert [record["name"] for record in carried.history] == ["a"]  # in the journal at once
    assert journal.writer.history.written == 0  # not copied yet

    await asyncio.wait_for(journal.writer.history.complete(journal.writer.seq), 10)
    assert await history_of(connection) == ["a", "b", "c"]
    assert journal.writer.history.written == 1  # three journal messages, one copy
    assert await history_complete_through(await connection.channel()) == journal.writer.seq
    await journal.close()


async def test_a_new_replica_copies_what_the_crashed_one_had_not_once(
    connection: AbstractConnection, amqp_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await start(connection)
    await journal_with_history(first, ["a", "b"])
    await first.close()  # a graceful stop copies what it journaled

    crashed = await aio_pika.connect(amqp_url)
    dying = await start(crashed)
    await asyncio.wait_for(dying.writer.history.complete(dying.writer.seq), 10)
    monkeypatch.setattr(history_stream, "COPY_DELAY", 30.0)
    await journal_with_history(dying, ["c", "d"])  # journaled and confirmed, not copied
    await crashed.close()  # no graceful stop: as if killed
    monkeypatch.undo()
    assert await history_of(connection) == ["a", "b"]

    second = await start(connection)
    await asyncio.wait_for(second.writer.history.complete(second.writer.seq), 10)
    await journal_with_history(second, ["e"])
    await second.close()
    assert await history_of(connection) == ["a", "b", "c", "d", "e"]  # c and d before e

    third = await start(connection)  # nothing lacking: nothing copied again
    await asyncio.wait_for(third.writer.history.complete(third.writer.seq), 10)
    await third.close()
    assert third.writer.history.written == 0
    assert await history_of(connection) == ["a", "b", "c", "d", "e"]


async def test_a_snapshot_is_saved_only_once_the_history_holds_what_it_covers(
    connection: AbstractConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = await start(connection)
    await asyncio.wait_for(journal.writer.history.complete(journal.writer.seq), 10)
    monkeypatch.setattr(history_stream, "COPY_DELAY", 30.0)
    await journal_with_history(journal, [f"n-{index}" for index in range(EVERY)])
    await asyncio.sleep(1.0)
    assert await load_snapshot(await connection.channel()) is None  # waiting for the history

    journal.writer.history.flush()
    await journal.settle()
    snapshot = await load_snapshot(await connection.channel())
    assert snapshot is not None and snapshot.seq == EVERY
    assert await history_complete_through(await connection.channel()) >= snapshot.seq
    await journal.close()
