"""Two replicas, one of them silenced or paused: the standby takes over only from a replica that
is gone, and nothing is lost or doubled either way. `pytest tests/reliability -s -k takeover`
prints the figures; how fast the takeover is, is measured by `python -m benchmarks.takeover`
(docs/performance.md), not asserted here."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
from yarl import URL

from tests.cluster.support import SilentProxy
from tests.integration.processes import Processes
from tests.reliability.harness import (
    check_exactly_once,
    cluster_yaml,
    collect_commands,
    faults_for,
    publish_all,
)
from tests.reliability.test_reliability import wait_active

pytestmark = [pytest.mark.broker, pytest.mark.reliability]

FAULTS = 1_000


async def test_a_silent_active_replica_is_taken_over_with_nothing_lost_or_doubled(
    amqp_url: str, tmp_path: Path
) -> None:
    (tmp_path / "cluster.yaml").write_text(cluster_yaml(FAULTS))
    direct = URL(amqp_url)
    proxy = await SilentProxy(direct.port or 5672).start()
    processes = Processes(tmp_path / "cluster.yaml", tmp_path, str(direct.with_port(proxy.port)))
    faults = faults_for(FAULTS)
    try:
        silenced = await processes.service("replica-behind-proxy")
        await wait_active(silenced)
        processes.amqp_url = amqp_url
        standby = await processes.service("replica-direct")
        await asyncio.sleep(2)
        assert "active: consuming" not in standby.output()
        collecting = asyncio.create_task(collect_commands(amqp_url, "server1", FAULTS))
        publishing = asyncio.create_task(publish_all(amqp_url, faults, rate=100))
        await asyncio.sleep(3)
        proxy.silence()
        silent_at = time.monotonic()
        await wait_active(standby, timeout=60)
        took_over = time.monotonic() - silent_at
        await asyncio.sleep(3)
        proxy.resume()  # what the silenced replica still holds arrives now: dropped, or refused
        await publishing
        found = await collecting
    except BaseException:
        print(processes.logs())
        raise
    finally:
        await processes.stop_all()
        await proxy.close()
    check_exactly_once(found, faults)
    print(
        f"\n{FAULTS} faults, the active replica's network silent: standby active after"
        f" {took_over:.2f} s; every fault exactly one command, {found.wire_duplicates} same-id"
        " resends"
    )


async def test_a_paused_active_replica_decides_nothing_stale(amqp_url: str, tmp_path: Path) -> None:
    """A 1 s pause (SIGSTOP), as a long collection would make: the replica keeps its role, or,
    if it lost it, nothing it decided is published twice or lost."""
    (tmp_path / "cluster.yaml").write_text(cluster_yaml(FAULTS))
    processes = Processes(tmp_path / "cluster.yaml", tmp_path, amqp_url)
    faults = faults_for(FAULTS)
    try:
        paused = await processes.service("replica-paused")
        await wait_active(paused)
        standby = await processes.service("replica-standby")
        await asyncio.sleep(2)
        collecting = asyncio.create_task(collect_commands(amqp_url, "server1", FAULTS))
        publishing = asyncio.create_task(publish_all(amqp_url, faults, rate=100))
        await asyncio.sleep(3)
        assert paused.process is not None
        paused.process.send_signal(signal.SIGSTOP)
        await asyncio.sleep(1.0)
        paused.process.send_signal(signal.SIGCONT)
        await publishing
        found = await collecting
        took_over = "active: consuming" in standby.output()
    except BaseException:
        print(processes.logs())
        raise
    finally:
        await processes.stop_all()
    check_exactly_once(found, faults)
    print(
        f"\n{FAULTS} faults, the active replica paused for 1 s:"
        f" {'the standby took over' if took_over else 'it kept its role'}; every fault exactly"
        f" one command, {found.wire_duplicates} same-id resends"
    )
