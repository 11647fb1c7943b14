"""Nothing lost, nothing doubled: the service under broker restarts, SIGKILL, replica loss, a
flood of bad input, and a long journal. `pytest tests/reliability -s` prints the figures."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.integration.processes import Process, Processes
from tests.reliability.harness import (
    check_exactly_once,
    cluster_yaml,
    collect_commands,
    faults_for,
    publish_all,
    restart_broker,
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


async def test_faults_survive_two_broker_restarts(processes: Processes, amqp_url: str) -> None:
    service = await processes.service()
    await wait_active(service)
    faults = faults_for(FAULTS)
    collecting = asyncio.create_task(collect_commands(amqp_url, "server1", FAULTS))
    publishing = asyncio.create_task(publish_all(amqp_url, faults, rate=500))
    try:
        for _ in range(2):
            await asyncio.sleep(3)
            await restart_broker()
        reconnects = await publishing
        found = await collecting
    finally:
        await processes.stop_all()
    check_exactly_once(found, faults)
    print(
        f"\n{FAULTS} faults, 2 broker restarts: relay reconnects {reconnects}, "
        f"commands {len(found.deliveries)}, same-id redeliveries {found.wire_duplicates}"
    )


async def test_service_killed_mid_stream_and_started_again(
    processes: Processes, amqp_url: str
) -> None:
    service = await processes.service()
    await wait_active(service)
    faults = faults_for(FAULTS)
    collecting = asyncio.create_task(collect_commands(amqp_url, "server1", FAULTS))
    publishing = asyncio.create_task(publish_all(amqp_url, faults, rate=1000))
    try:
        await asyncio.sleep(2.5)
        await service.kill()
        restarted_at = time.monotonic()
        again = await processes.service("service-again")
        await wait_active(again)
        startup = time.monotonic() - restarted_at
        await publishing
        found = await collecting
    finally:
        await processes.stop_all()
    check_exactly_once(found, faults)
    print(
        f"\n{FAULTS} faults, service SIGKILLed mid-stream: restarted and active in {startup:.2f} s, "
        f"commands {len(found.deliveries)}, same-id redeliveries {found.wire_duplicates}"
    )


async def test_active_replica_killed_while_a_standby_runs(
    processes: Processes, amqp_url: str
) -> None:
    active = await processes.service("replica-a")
    await wait_active(active)
    standby = await processes.service("replica-b")
    await asyncio.sleep(1)
    assert "active: consuming" not in standby.output()
    faults = faults_for(FAULTS)
    collecting = asyncio.create_task(collect_commands(amqp_url, "server1", FAULTS))
    publishing = asyncio.create_task(publish_all(amqp_url, faults, rate=1000))
    try:
        await asyncio.sleep(2.5)
        await active.kill()
        killed_at = time.monotonic()
        await wait_active(standby)
        takeover = time.monotonic() - killed_at
        await publishing
        found = await collecting
    finally:
        await processes.stop_all()
    check_exactly_once(found, faults)
    assert takeover < 10
    print(
        f"\n{FAULTS} faults, active replica SIGKILLed: standby active after {takeover:.2f} s, "
        f"commands {len(found.deliveries)}, same-id redeliveries {found.wire_duplicates}"
    )
