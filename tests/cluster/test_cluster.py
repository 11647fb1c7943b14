"""mrwbus on a real three-node RabbitMQ cluster: a node lost under load, quorum lost and back,
and a silent network between the active replica and the broker. `pytest tests/cluster -s`
prints the figures."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mrwbus.bus.publisher import PUBLISH_TIMEOUT
from mrwbus.bus.topology import FAULTS
from tests.cluster.support import NODES, ClusterVhost, SilentProxy, down, node_of_port, up
from tests.integration.processes import Process, Processes
from tests.reliability.harness import (
    Collected,
    check_exactly_once,
    cluster_yaml,
    collect_commands,
    faults_for,
    publish_all,
)

pytestmark = [pytest.mark.cluster]

LOAD = 5_000


async def wait_for(process: Process, text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in process.output():
        assert process.running, f"{process.name} exited:\n{process.output()[-3000:]}"
        assert time.monotonic() < deadline, (
            f"{process.name}: no {text!r}:\n{process.output()[-3000:]}"
        )
        await asyncio.sleep(0.1)


def active_node(process: Process) -> str:
    """The node the replica said it consumes faults from, in its last such line."""
    ports = re.findall(r"active: consuming faults from \S+?:(\d+)/", process.output())
    assert ports, process.output()[-2000:]
    return node_of_port(int(ports[-1]))


@contextlib.asynccontextmanager
async def stopped_at_the_end(processes: Processes, *proxies: SilentProxy) -> AsyncIterator[None]:
    """Stop every process and proxy at the end; print the processes' logs if the test failed."""
    try:
        yield
    except BaseException:
        print(processes.logs())
        raise
    finally:
        await processes.stop_all()
        for proxy in proxies:
            await proxy.close()


def moment(what: str) -> None:
    """A step of a test, with the time, to read beside the processes' logs if it fails."""
    print(f"{datetime.now(UTC).isoformat()} {what}")


def processes_for(cluster: ClusterVhost, tmp_path: Path, monitors: int) -> Processes:
    config = tmp_path / "cluster.yaml"
    # The test cluster has one user (guest) for everyone: the agents cannot tell the service's
    # commands by their sender, so this config runs unverified like the other test configs.
    config.write_text(cluster_yaml(monitors))  # one broker user (guest): senders unverified
    return Processes(config, tmp_path, ",".join(cluster.urls))


def stopped_deciding_after(process: Process, since: datetime) -> float:
    """Seconds from `since` to the replica's log line saying the broker went silent."""
    for line in process.output().splitlines():
        if "has not answered" in line:
            return (datetime.fromisoformat(json.loads(line)["at"]) - since).total_seconds()
    raise AssertionError(f"{process.name} never noticed the silence:\n{process.output()[-3000:]}")


def longest_pause_after(found: Collected, moment: float) -> float:
    """The longest time without a new command from `moment` on: the outage as agents see it."""
    times = sorted(at for at in found.first_at.values() if at >= moment)
    return max((b - a for a, b in zip([moment, *times], times, strict=False)), default=0.0)


def next_command_after(found: Collected, moment: float) -> float:
    later = [at for at in found.first_at.values() if at > moment]
    assert later, "no command after the moment"
    return min(later) - moment


async def replicas_and_agents(processes: Processes) -> tuple[Process, Process, list[Process]]:
    first = await processes.service("replica-1")
    await wait_for(first, "active: consuming")
    second = await processes.service("replica-2")
    agents = [await processes.agent(server) for server in ("server2", "server3")]
    await asyncio.sleep(2)
    assert "active: consuming" not in second.output()
    return first, second, agents


Disruption = Callable[[Process], Awaitable[tuple[str, float, float]]]
"""Takes a node away (and maybe back); returns the node, when it began to stop, when it was
gone."""


async def load_through(
    cluster: ClusterVhost, tmp_path: Path, disrupt: Disruption, what: str
) -> None:
    """5,000 faults at 500/s while `disrupt` takes a node away and back; every fault exactly one
    command, the agents and the standby still up afterwards."""
    processes = processes_for(cluster, tmp_path, LOAD)
    faults = faults_for(LOAD)
    async with stopped_at_the_end(processes):
        active, standby, agents = await replicas_and_agents(processes)
        started = time.monotonic()
        collecting = asyncio.create_task(collect_commands(cluster.urls, "server1", LOAD))
        publishing = asyncio.create_task(publish_all(cluster.urls, faults, rate=500))
        await asyncio.sleep(3)
        node, stopping_at, lost_at = await disrupt(active)
        resends = await publishing
        found = await collecting
        for process in (active, standby, *agents):
            assert process.running, f"{process.name} exited:\n{process.output()[-3000:]}"
    check_exactly_once(found, faults)
    print(
        f"\n{LOAD} faults, {what} (node {node}): stop_app took {lost_at - stopping_at:.2f} s; "
        f"next command {next_command_after(found, stopping_at):.2f} s after it began, "
        f"{next_command_after(found, lost_at):.2f} s after the node was gone, longest pause "
        f"{longest_pause_after(found, stopping_at):.2f} s; relay reconnects "
        f"{resends}, commands {len(found.deliveries)}, same-id resends {found.wire_duplicates}, "
        f"last command {max(found.first_at.values()) - started:.1f} s after the first fault"
    )


async def test_the_node_leading_the_faults_queue_stopped_and_started(
    cluster: ClusterVhost, tmp_path: Path
) -> None:
    async def stop_the_leader(_: Process) -> tuple[str, float, float]:
        node = cluster.leader_of(FAULTS)
        stopping_at = time.monotonic()
        await down(node)
        lost_at = time.monotonic()
        await asyncio.sleep(4)
        await up(node)
        return node, stopping_at, lost_at

    await load_through(
        cluster, tmp_path, stop_the_leader, "the faults queue's leader stopped and started"
    )


async def test_the_node_of_the_active_replica_stopped(
    cluster: ClusterVhost, tmp_path: Path
) -> None:
    async def stop_its_node(active: Process) -> tuple[str, float, float]:
        node = active_node(active)
        stopping_at = time.monotonic()
        await down(node)
        return node, stopping_at, time.monotonic()

    await load_through(cluster, tmp_path, stop_its_node, "the active replica's node stopped")


@pytest.mark.parametrize(
    "without_quorum",
    [
        pytest.param(6.0, id="confirms-resume"),
        # Past the publish timeout (15 s): the journal fails, the replica steps down, leads
        # again once it can write, and no fault in hand is dead-lettered on the way (a nack
        # per failed fault once burned a quorum queue's delivery limit within a second).
        pytest.param(PUBLISH_TIMEOUT + 5, id="journal-fails-meanwhile"),
    ],
)
async def test_two_nodes_lost_stops_deciding_and_one_back_resumes(
    cluster: ClusterVhost, tmp_path: Path, without_quorum: float
) -> None:
    count = 300
    processes = processes_for(cluster, tmp_path, count)
    faults = faults_for(count)
    service = await processes.service()
    async with stopped_at_the_end(processes):
        await wait_for(service, "active: consuming")
        found = Collected()
        collecting = asyncio.create_task(
            collect_commands(cluster.urls, "server1", count, timeout=120, into=found)
        )
        publishing = asyncio.create_task(publish_all(cluster.urls, faults, rate=30))
        await asyncio.sleep(2)
        lost = [node for node in NODES if node != "a"]
        for node in lost:
            await down(node)
        moment(f"nodes {lost} down, {len(found.deliveries)} commands so far")
        await asyncio.sleep(3)  # what was in flight settles
        decided = len(found.deliveries)
        await asyncio.sleep(without_quorum)
        assert len(found.deliveries) == decided, "commands without a quorum"
        back_at = time.monotonic()
        await up(lost[0])
        up_took = time.monotonic() - back_at
        moment(f"node {lost[0]} up after {up_took:.2f} s, {len(found.deliveries)} commands so far")
        await publishing
        await collecting
        assert service.running
    check_exactly_once(found, faults)
    print(
        f"\n{count} faults, nodes {' and '.join(lost)} lost: {decided} commands before, none "
        f"during {without_quorum:g} s without a quorum; node {lost[0]} started again (start_app and await_startup "
        f"took {up_took:.2f} s), next command {next_command_after(found, back_at):.2f} s after "
        f"the start began; every fault exactly one command"
    )


async def test_a_silent_network_hands_leadership_to_the_standby_within_10_s(
    cluster: ClusterVhost, tmp_path: Path
) -> None:
    count = 1_000
    processes = processes_for(cluster, tmp_path, count)
    proxies = [await SilentProxy(5681 + index).start() for index in range(len(NODES))]
    faults = faults_for(count)
    async with stopped_at_the_end(processes, *proxies):
        behind = [cluster.url(node, proxy.port) for node, proxy in zip(NODES, proxies, strict=True)]
        processes.amqp_url = ",".join(behind)
        active = await processes.service("replica-behind-proxy")
        await wait_for(active, "active: consuming")
        processes.amqp_url = ",".join(cluster.urls)
        standby = await processes.service("replica-direct")
        await asyncio.sleep(2)
        assert "active: consuming" not in standby.output()
        collecting = asyncio.create_task(collect_commands(cluster.urls, "server1", count))
        publishing = asyncio.create_task(publish_all(cluster.urls, faults, rate=40))
        await asyncio.sleep(5)
        for proxy in proxies:
            proxy.silence()
        silent_at = time.monotonic()
        silent_since = datetime.now(UTC)
        await wait_for(standby, "active: consuming", timeout=30)
        took_over = time.monotonic() - silent_at
        await asyncio.sleep(max(0.0, 20 - took_over))
        for proxy in proxies:
            proxy.resume()
        await publishing
        found = await collecting
    check_exactly_once(found, faults)
    first = next_command_after(found, silent_at)
    assert first < 10, f"the first command after the silence came {first:.2f} s later"
    stopped = stopped_deciding_after(active, silent_since)
    print(
        f"\n{count} faults, the active replica's network silent for 20 s: it stopped deciding "
        f"{stopped:.2f} s after the silence began, standby active after {took_over:.2f} s, "
        f"next command {first:.2f} s after the silence began; "
        f"commands {len(found.deliveries)}, same-id resends {found.wire_duplicates}"
    )
