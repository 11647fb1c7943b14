"""Fencing end to end: the real service, real agents, the real `fence_ipmilan` against simulated
IPMI BMCs on 127.0.0.1. A server that cannot answer is powered off through its BMC by a peer,
then its group runs elsewhere; never before the power-off, and one power-off per incident."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path

import pytest

from mrwbus.messages import Event
from mrwbus.relay import make_fault
from tests.integration.bmc import PASSWORD, Bmcs
from tests.integration.broker import BusProbe
from tests.integration.processes import Process, Processes
from tests.integration.test_closed_loop import placement, status_of, wait_status

pytestmark = pytest.mark.broker

SERVERS = ["server1", "server2", "server3"]
HEARTBEAT_TIMEOUT = 3.0
RECOVERED_WITHIN = HEARTBEAT_TIMEOUT + 10  # the bound: heartbeat_timeout + 10 s


def cluster_yaml(bmcs: Bmcs, *, nic: str = "") -> str:
    servers = "\n".join(f"  {server}: {bmcs.yaml(server)}" for server in SERVERS)
    return f"""
servers:
{servers}
security: {{verify_senders: false}}
groups:
  app: {{servers: [server1, server2, server3]}}
service:
  stop_timeout: 3s
  start_timeout: 10s
  heartbeat_timeout: {HEARTBEAT_TIMEOUT:g}s
  fence_retry_after: 2s
monitors:
  nic: {{category: NIC, keyword: eth0, recovery: {{action: failover, target: app{nic}}}}}
  hba: {{category: FC, recovery: {{action: final_action, target: app, final_action: bmc_power_off}}}}
agent:
  heartbeat_interval: 1s
  state_dir: state
  handlers:
    failover.stop: {{run: 'echo "$(date +%s.%N) $MRWBUS_SERVER stop $MRWBUS_GROUP" >> actions.log'}}
    failover.start: {{run: 'echo "$(date +%s.%N) $MRWBUS_SERVER start $MRWBUS_GROUP" >> actions.log'}}
"""


class Cluster:
    def __init__(self, processes: Processes, bmcs: Bmcs, folder: Path) -> None:
        self.processes = processes
        self.bmcs = bmcs
        self.folder = folder

    def agent(self, server: str) -> Process:
        return next(p for p in self.processes.started if p.name == f"agent-{server}")

    def freeze(self, server: str) -> None:
        """The server hangs: its agent stops answering, its connection stays open."""
        process = self.agent(server).process
        assert process is not None
        process.send_signal(signal.SIGSTOP)

    async def power_lost(self, server: str) -> None:
        """What the BMC's power-off did to the real machine: its agent is gone."""
        await self.agent(server).kill()

    def starts(self) -> list[tuple[datetime, str]]:
        """(when, server) of every start of `app` the agents ran."""
        log = self.folder / "actions.log"
        found = []
        for line in log.read_text().splitlines() if log.exists() else []:
            stamp, server, step, _ = line.split()
            if step == "start":
                found.append((datetime.fromtimestamp(float(stamp)).astimezone(), server))
        return found

    def assert_started_only_after_the_power_off(self, fenced: str, started_on: str) -> None:
        [off] = self.bmcs.power_offs(fenced)  # one power-off for the incident
        starts = self.starts()
        assert [server for _, server in starts] == [started_on], starts
        assert starts[0][0] > off, f"started at {starts[0][0]}, powered off at {off}"


Start = Callable[..., Awaitable[Cluster]]


@pytest.fixture
def redfish(request: pytest.FixtureRequest) -> frozenset[str]:
    """The servers whose BMC is Redfish (sushy-tools) instead of IPMI: none unless a test
    says otherwise (`indirect` parametrization)."""
    return frozenset(getattr(request, "param", ()))


@pytest.fixture
async def start_cluster(
    amqp_url: str, tmp_path: Path, probe: BusProbe, redfish: frozenset[str]
) -> AsyncIterator[Start]:
    bmcs = Bmcs.start(tmp_path, SERVERS, redfish=redfish)
    started: list[Processes] = []

    async def start(**options: str) -> Cluster:
        config = tmp_path / "cluster.yaml"
        config.write_text(cluster_yaml(bmcs, **options))
        processes = Processes(config, tmp_path, amqp_url)
        started.append(processes)
        await processes.service()
        for server in SERVERS:
            await processes.agent(server)
        await probe.wait_reports(set(SERVERS))
        await wait_status(amqp_url, lambda s: all(row.alive for row in s.servers))
        return Cluster(processes, bmcs, tmp_path)

    try:
        yield start
    finally:
        for processes in started:
            for process in processes.started:
                if process.running and process.process is not None:
                    process.process.send_signal(signal.SIGCONT)  # a frozen one can stop
            await processes.stop_all()
        bmcs.stop_all()


async def wait_for(probe: BusProbe, code: str, timeout: float, **fields: str) -> Event:
    return await probe.wait_event(code, timeout=timeout, **fields)


async def test_a_frozen_server_is_fenced_by_a_peer_and_its_group_runs_elsewhere(
    start_cluster: Start, probe: BusProbe, amqp_url: str
) -> None:
    cluster = await start_cluster()
    frozen_at = asyncio.get_running_loop().time()
    cluster.freeze("server1")

    fenced = await wait_for(probe, "MRW-1002", RECOVERED_WITHIN, server="server1")
    assert fenced.detail["fencer"] == "server2"  # the peer that takes the group over
    await cluster.power_lost("server1")
    await wait_for(probe, "MRW-320", RECOVERED_WITHIN, group="app")
    recovered_in = asyncio.get_running_loop().time() - frozen_at
    assert recovered_in < RECOVERED_WITHIN, recovered_in

    assert cluster.bmcs.power("server1") == "off"
    cluster.assert_started_only_after_the_power_off("server1", "server2")
    status = await status_of(amqp_url)
    assert placement(status)["app"] == "server2"
    [row] = [row for row in status.servers if row.server == "server1"]
    assert row.down is not None and row.down.by == "server2" and not row.alive
    for name in ("service", "agent-server2", "agent-server3"):
        log = next(p for p in cluster.processes.started if p.name == name).output()
        assert '"level": "error"' not in log, log[-2000:]  # nothing failed along the way


@pytest.mark.parametrize("redfish", [{"server1"}], indirect=True)
async def test_a_frozen_server_behind_a_redfish_bmc_is_fenced_with_fence_redfish(
    start_cluster: Start, probe: BusProbe, redfish: frozenset[str]
) -> None:
    cluster = await start_cluster()
    assert "fence_redfish" in (cluster.folder / "cluster.yaml").read_text()
    cluster.freeze("server1")
    await wait_for(probe, "MRW-1002", RECOVERED_WITHIN, server="server1")
    await cluster.power_lost("server1")
    await wait_for(probe, "MRW-320", RECOVERED_WITHIN, group="app")
    assert cluster.bmcs.power("server1") == "off"
    cluster.assert_started_only_after_the_power_off("server1", "server2")


async def test_an_unreachable_bmc_keeps_the_group_put_until_it_answers(
    start_cluster: Start, probe: BusProbe, amqp_url: str
) -> None:
    cluster = await start_cluster()
    cluster.bmcs.unplug("server1")
    cluster.freeze("server1")

    failed = await wait_for(probe, "MRW-1004", 60, server="server1")
    assert "every peer failed (server2, server3)" in failed.text
    assert "NOT fenced" in failed.text and cluster.starts() == []
    assert placement(await status_of(amqp_url))["app"] == "server1"

    cluster.bmcs.power_up("server1")  # the BMC's network is back; the next round fences
    await wait_for(probe, "MRW-1002", 60, server="server1")
    await cluster.power_lost("server1")
    await wait_for(probe, "MRW-320", 30, group="app")
    cluster.assert_started_only_after_the_power_off("server1", "server2")


async def test_fence_first_powers_off_a_hung_source_then_starts(
    start_cluster: Start, probe: BusProbe
) -> None:
    cluster = await start_cluster(nic=", fence_first: true, final_action: shutdown")
    cluster.freeze("server1")
    await probe.publish(make_fault("server1", "NIC", "eth0", "link down"))

    await wait_for(probe, "MRW-1002", RECOVERED_WITHIN, server="server1")
    await cluster.power_lost("server1")
    await wait_for(probe, "MRW-320", RECOVERED_WITHIN, group="app")
    cluster.assert_started_only_after_the_power_off("server1", "server2")


async def test_a_bmc_power_off_final_action_runs_through_a_peer(
    start_cluster: Start, probe: BusProbe
) -> None:
    cluster = await start_cluster()
    cluster.freeze("server1")  # the server itself could never have run it
    await probe.publish(make_fault("server1", "FC", "host3", "HBA dead"))

    issued = await wait_for(probe, "MRW-201", 10, monitor="hba")
    assert "fence (off) of server1" in issued.text and "server2" in issued.text
    await wait_for(probe, "MRW-1002", RECOVERED_WITHIN, server="server1")
    await cluster.power_lost("server1")
    await wait_for(probe, "MRW-320", RECOVERED_WITHIN, group="app")
    cluster.assert_started_only_after_the_power_off("server1", "server2")


async def test_a_takeover_in_the_middle_of_a_fence_fences_once_and_starts_the_group(
    start_cluster: Start, probe: BusProbe
) -> None:
    cluster = await start_cluster()
    standby = await cluster.processes.service("service-standby")
    cluster.freeze("server1")

    await wait_for(probe, "MRW-1001", RECOVERED_WITHIN, server="server1")
    active = next(p for p in cluster.processes.started if p.name == "service")
    await active.kill()  # while the peer's fence agent runs

    await wait_for(probe, "MRW-1002", 60, server="server1")
    await cluster.power_lost("server1")
    await wait_for(probe, "MRW-320", 60, group="app")
    assert standby.running
    cluster.assert_started_only_after_the_power_off("server1", "server2")


async def mrwbus(amqp_url: str, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mrwbus",
        *args,
        env={**os.environ, "MRWBUS_AMQP_URL": amqp_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_an_operator_checks_a_bmc_then_fences_a_hung_server(
    start_cluster: Start, probe: BusProbe, amqp_url: str
) -> None:
    cluster = await start_cluster()
    code, out = await mrwbus(amqp_url, "fence", "server1", "--action", "status")
    assert code == 0, out
    assert "power status read by server2's agent; its BMC reports the power on" in out
    assert cluster.bmcs.power_offs("server1") == []
    assert placement(await status_of(amqp_url))["app"] == "server1"  # nothing moved

    cluster.freeze("server1")
    code, out = await mrwbus(amqp_url, "fence", "server1")
    assert code == 0, out
    assert "fenced (power off) by server2's agent" in out
    assert PASSWORD not in out + cluster.processes.logs()
    await cluster.power_lost("server1")
    await wait_for(probe, "MRW-320", RECOVERED_WITHIN, group="app")
    cluster.assert_started_only_after_the_power_off("server1", "server2")
