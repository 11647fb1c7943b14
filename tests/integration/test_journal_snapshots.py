"""Snapshots on the real broker: each names the journal offset to replay from, counted by the
writer (no reader follows the journal) and checked against the message there before it is
saved; a start-up that finds entries missing after a snapshot's offset replays everything."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aio_pika
import pytest
from aio_pika.abc import AbstractConnection

from mrwbus.bus.journal_stream import Snapshot, load_snapshot, save_snapshot
from mrwbus.bus.topology import declare_journal
from mrwbus.config.loading import parse_config
from mrwbus.core.decision import CONFIRMED
from mrwbus.messages import utc_now
from mrwbus.service.persistence import Recovery, RestoredState, StateJournal
from tests.integration.configs import two_servers_one_nic_monitor

pytestmark = pytest.mark.broker

CONFIG = parse_config(two_servers_one_nic_monitor())
EVERY = 100


@pytest.fixture
async def connection(amqp_url: str) -> AsyncIterator[AbstractConnection]:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        await declare_journal(await connection.channel())
        yield connection


async def start(connection: AbstractConnection) -> tuple[StateJournal, RestoredState, Recovery]:
    return await StateJournal.recover(
        CONFIG,
        await connection.channel(publisher_confirms=True),
        await connection.channel(),
        await connection.channel(),
        snapshot_every=EVERY,
    )


async def decide_faults(connection: AbstractConnection, first: int, count: int) -> None:
    """One session: recover, journal `count` decided faults one message each, stop."""
    journal, restored, _ = await start(connection)
    cluster = restored.cluster
    for index in range(first, first + count):
        state = cluster.state_of("mrw1", "server1")
        cluster.monitors[("mrw1", "server1")] = state.record_fault(
            f"f-{index}", "eth0", "", utc_now()
        )
        cluster.dirty.add(("mrw1", "server1"))
        await journal.decision(cluster, "mrw1", f"f-{index}", CONFIRMED, shared=False)
    await journal.settle()
    await journal.close()


async def test_counted_offsets_hold_across_sessions(connection: AbstractConnection) -> None:
    # Three sessions, so the later writers count from start-up markers deep in the stream.
    await decide_faults(connection, 0, 150)
    await decide_faults(connection, 150, 150)
    journal, restored, recovery = await start(connection)
    await journal.close()

    assert recovery.snapshot_seq >= 200
    assert recovery.replayed_entries < EVERY
    assert len(restored.decided["mrw1"]) == 300
    assert restored.cluster.state_of("mrw1", "server1").faults == 300


async def test_a_snapshot_past_its_entries_is_not_trusted(
    connection: AbstractConnection, caplog: pytest.LogCaptureFixture
) -> None:
    await decide_faults(connection, 0, 150)
    channel = await connection.channel()
    snapshot = await load_snapshot(channel)
    assert snapshot is not None and snapshot.seq == EVERY
    # As if the offset had been miscounted: 20 messages (entries) too far.
    await save_snapshot(channel, Snapshot(snapshot.seq, snapshot.offset + 20, snapshot.records))

    with caplog.at_level(logging.WARNING, logger="mrwbus.service.persistence"):
        journal, restored, recovery = await start(connection)
    await journal.close()

    assert "replaying the whole journal" in caplog.text
    assert (recovery.snapshot_seq, recovery.replayed_entries) == (0, 150)
    assert len(restored.decided["mrw1"]) == 150
    assert restored.cluster.state_of("mrw1", "server1").faults == 150
