"""Nothing lost, nothing doubled: the service under broker restarts, SIGKILL, replica loss, a
flood of bad input, and a long journal. `pytest tests/reliability -s` prints the figures."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from mrwbus.bus.publisher import json_message
from mrwbus.bus.rpc import ask_service
from mrwbus.bus.topology import DEAD, ERROR_HEADER, SNAPSHOT, declare_exchanges
from mrwbus.bus.topology import FAULTS as FAULTS_EXCHANGE
from mrwbus.config.loading import parse_config
from mrwbus.messages import ControlRequest, ControlVerb, new_id
from tests.integration.processes import Process, Processes
from tests.reliability.harness import (
    bad_inputs,
    check_exactly_once,
    cluster_yaml,
    collect_commands,
    faults_for,
    publish_all,
    restart_broker,
    write_long_journal,
)

pytestmark = [pytest.mark.broker, pytest.mark.reliability]

FAULTS = 5_000


async def wait_active(process: Process, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while "active: consuming" not in process.output():
        assert process.running, f"{process.name} exited:\n{process.output()[-2000:]}"
        assert time.monotonic() < deadline, (
            f"{process.name} never became active:\n{process.output()[-2000:]}"
        )
        await asyncio.sleep(0.1)


@pytest.fixture
def processes(amqp_url: str, tmp_path: Path) -> Processes:
    config = tmp_path / "cluster.yaml"
    config.write_text(cluster_yaml(FAULTS))
    return Processes(config, tmp_path, amqp_url)


Disruption = Callable[[], Awaitable[str]]


async def stream_through(
    processes: Processes, amqp_url: str, rate: float, disrupt: Disruption
) -> str:
    """5,000 faults published by a relay that never gives up while `disrupt` does its worst;
    every fault must give exactly one command. Returns what `disrupt` measured."""
    faults = faults_for(FAULTS)
    collecting = asyncio.create_task(collect_commands(amqp_url, "server1", FAULTS))
    publishing = asyncio.create_task(publish_all(amqp_url, faults, rate=rate))
    try:
        measured = await disrupt()
        reconnects = await publishing
        found = await collecting
    finally:
        await processes.stop_all()
    check_exactly_once(found, faults)
    return (
        f"{measured}; relay reconnects {reconnects}, commands {len(found.deliveries)}, "
        f"same-id redeliveries {found.wire_duplicates}"
    )


async def test_faults_survive_two_broker_restarts(processes: Processes, amqp_url: str) -> None:
    await wait_active(await processes.service())

    async def restart_twice() -> str:
        for _ in range(2):
            await asyncio.sleep(3)
            await restart_broker()
        return "2 broker restarts"

    print(f"\n{FAULTS} faults, {await stream_through(processes, amqp_url, 500, restart_twice)}")


async def test_service_killed_mid_stream_and_started_again(
    processes: Processes, amqp_url: str
) -> None:
    service = await processes.service()
    await wait_active(service)

    async def kill_and_restart() -> str:
        await asyncio.sleep(2.5)
        await service.kill()
        restarted_at = time.monotonic()
        await wait_active(await processes.service("service-again"))
        return f"service SIGKILLed mid-stream, restarted and active in {time.monotonic() - restarted_at:.2f} s"

    print(f"\n{FAULTS} faults, {await stream_through(processes, amqp_url, 1000, kill_and_restart)}")


async def test_active_replica_killed_while_a_standby_runs(
    processes: Processes, amqp_url: str
) -> None:
    active = await processes.service("replica-a")
    await wait_active(active)
    standby = await processes.service("replica-b")
    await asyncio.sleep(1)
    assert "active: consuming" not in standby.output()

    async def kill_the_active() -> str:
        await asyncio.sleep(2.5)
        await active.kill()
        killed_at = time.monotonic()
        await wait_active(standby)
        takeover = time.monotonic() - killed_at
        assert takeover < 10
        return f"active replica SIGKILLed, standby active after {takeover:.2f} s"

    print(f"\n{FAULTS} faults, {await stream_through(processes, amqp_url, 1000, kill_the_active)}")


GOOD = 1_000
BAD = 10_000


async def test_bad_input_flood_is_dead_lettered_while_good_faults_flow(
    amqp_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text(cluster_yaml(GOOD))
    processes = Processes(config, tmp_path, amqp_url)
    service = await processes.service()
    await wait_active(service)
    good = faults_for(GOOD)
    bad = bad_inputs(BAD)
    collecting = asyncio.create_task(collect_commands(amqp_url, "server1", GOOD))
    started = time.monotonic()
    try:
        connection = await aio_pika.connect(amqp_url)
        channel = await connection.channel(publisher_confirms=True)
        exchanges = await declare_exchanges(channel)
        every = BAD // GOOD
        for index, (body, routing_key, _) in enumerate(bad):
            message = aio_pika.Message(
                body, message_id=f"bad-{index}", delivery_mode=aio_pika.DeliveryMode.PERSISTENT
            )
            await exchanges[FAULTS_EXCHANGE].publish(message, routing_key, mandatory=False)
            if index % every == 0:
                fault = good[index // every]
                await exchanges[FAULTS_EXCHANGE].publish(json_message(fault), fault.routing_key)
        found = await collecting
        reasons = await drain_dead_letters(channel, BAD)
        await connection.close()
        assert service.running, "the service went down"
    finally:
        await processes.stop_all()
    elapsed = time.monotonic() - started
    check_exactly_once(found, good)
    for index, (_, _, expected) in enumerate(bad):
        assert expected in reasons[f"bad-{index}"], (index, reasons[f"bad-{index}"])
    print(
        f"\n{BAD} bad inputs interleaved with {GOOD} good faults: {len(reasons)} dead-lettered with a reason, "
        f"{len(found.deliveries)} commands, {elapsed:.1f} s, service up throughout"
    )


async def drain_dead_letters(
    channel: AbstractChannel, count: int, timeout: float = 120.0
) -> dict[str, str]:
    """message id -> x-mrwbus-error of every dead letter."""
    queue = await channel.declare_queue(DEAD, passive=True)
    reasons: dict[str, str] = {}
    done = asyncio.Event()

    async def on_message(message: AbstractIncomingMessage) -> None:
        reasons[str(message.message_id)] = str((message.headers or {}).get(ERROR_HEADER))
        await message.ack()
        if len(reasons) >= count:
            done.set()

    await channel.set_qos(prefetch_count=500)
    await queue.consume(on_message)
    await asyncio.wait_for(done.wait(), timeout)
    return reasons


JOURNAL_ENTRIES = 100_000


async def test_start_up_with_a_long_journal_is_bounded_by_snapshots(
    amqp_url: str, tmp_path: Path
) -> None:
    config_text = cluster_yaml(GOOD)
    config = parse_config(config_text)
    (tmp_path / "cluster.yaml").write_text(config_text)
    # Write the journal through the service's own code path: 100,000 entries, a snapshot every
    # 9,000 entries.
    await write_long_journal(amqp_url, config, JOURNAL_ENTRIES, GOOD, snapshot_every=9_000)

    processes = Processes(tmp_path / "cluster.yaml", tmp_path, amqp_url)
    with_snapshots = await recovery_of(processes, "with-snapshots")
    connection = await aio_pika.connect(amqp_url)
    await (await (await connection.channel()).declare_queue(SNAPSHOT, passive=True)).purge()
    await connection.close()
    without = await recovery_of(processes, "without-snapshots")
    print(
        f"\njournal of {JOURNAL_ENTRIES} entries: start-up replayed {with_snapshots[0]} entries in "
        f"{with_snapshots[1]:.2f} s from the newest snapshot; with no snapshot {without[0]} entries "
        f"in {without[1]:.2f} s"
    )
    # Snapshots are taken every 9,000 entries (one at a time): fewer than that are ever replayed.
    # Without, the whole journal: the entries written and the first start's own few (its
    # "became active" history note is an entry).
    assert with_snapshots[0] < 9_000
    assert JOURNAL_ENTRIES < without[0] <= JOURNAL_ENTRIES + 10
    restored_faults = with_snapshots[2]
    assert restored_faults == JOURNAL_ENTRIES


async def recovery_of(processes: Processes, name: str) -> tuple[int, float, int]:
    """Start the service, read how its recovery went, ask for the status, stop it."""
    service = await processes.service(name)
    await wait_active(service)
    line = next(line for line in service.output().splitlines() if "state recovered" in line)
    match = re.search(r"(\d+) entries replayed, ([\d.]+) s", line)
    assert match, line
    reply = await ask_service(
        processes.amqp_url, ControlRequest(id=new_id(), verb=ControlVerb.STATUS)
    )
    assert reply.status is not None
    faults = sum(row.faults for row in reply.status.monitors)
    assert await service.terminate() == 0
    return int(match.group(1)), float(match.group(2)), faults
