"""Group resources run by the real OCF agents of Debian's resource-agents and pacemaker
(IPaddr2 in a network namespace per server, heartbeat:Dummy, pacemaker:Dummy, symlink), through
the real service and reference agents (separate processes) and the real broker. No handler
script is written anywhere: the configuration names agents and parameters only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mrwbus.messages import CommandResult, CommandStep, Outcome
from mrwbus.relay import make_fault
from tests.integration.broker import BusProbe
from tests.integration.ocf_cluster import (
    VIP,
    Namespaces,
    agent_actions,
    mrwbus,
    namespaces,
    require_agents,
    walkthrough_yaml,
)
from tests.integration.processes import Processes
from tests.integration.test_closed_loop import placement, wait_status

pytestmark = pytest.mark.broker

SERVERS = {"db1", "db2"}


@dataclass
class Cluster:
    config: Path
    state: Path
    ns: Namespaces
    processes: Processes

    def state_file(self, server: str, resource: str) -> Path:
        return self.state / f"{server}-{resource}.state"


@pytest.fixture
def ns() -> Iterator[Namespaces]:
    require_agents()
    yield from namespaces(sorted(SERVERS))


@pytest.fixture
async def cluster(
    amqp_url: str, tmp_path: Path, probe: BusProbe, ns: Namespaces
) -> AsyncIterator[Cluster]:
    """pg and app started on db1 by `mrwbus resources start` (mrwbus moves groups; it does
    not place them at first), then the service and both agents; until both groups are seen
    running on db1."""
    state = tmp_path / "state"
    state.mkdir()
    config = tmp_path / "pg.yaml"
    config.write_text(walkthrough_yaml(state, ns))
    for group in ("pg", "app"):
        started = await mrwbus(
            "resources", "start", group, "--server", "db1", "--config", str(config), cwd=tmp_path
        )
        assert started.status == 0, started
    processes = Processes(config, tmp_path, amqp_url)
    try:
        await processes.service()
        for server in sorted(SERVERS):
            await processes.agent(server)
        await probe.wait_reports(SERVERS)
        await wait_status(
            amqp_url, lambda s: placement(s) == {"pg": "db1", "app": "db1"} and _alive(s)
        )
        yield Cluster(config, state, ns, processes)
    finally:
        await processes.stop_all()


def _alive(status: object) -> bool:
    return all(server.alive for server in status.servers)  # type: ignore[attr-defined]


async def result_of(probe: BusProbe, command_id: str) -> CommandResult:
    while True:
        result = await probe.results.get()
        if result.command_id == command_id:
            return result


def lines(result: CommandResult) -> list[str]:
    """`postgres stop: exit 0 (OCF_SUCCESS)` per action, without what the agent logged."""
    return [
        line.split(": ", 2)[0] + ": " + line.split(": ", 2)[1]
        for line in result.detail.splitlines()
    ]


OK = "exit 0 (OCF_SUCCESS)"


async def test_walkthrough_a_nic_fault_on_db1_moves_pg_to_db2_in_order(
    cluster: Cluster, probe: BusProbe, amqp_url: str
) -> None:
    """docs/resources.md, "A worked example": vip, data and postgres move to db2."""
    assert VIP in cluster.ns.addresses("db1") and VIP not in cluster.ns.addresses("db2")
    fault = make_fault("db1", "NIC", "eth0", "link down")
    await probe.publish(fault)
    done = await probe.wait_event("MRW-320", timeout=60)
    assert done.detail["to_server"] == "db2"

    stop, start = await probe.next_commands(2, timeout=5)
    assert (stop.server, stop.step, start.server, start.step) == (
        "db1",
        CommandStep.STOP,
        "db2",
        CommandStep.START,
    )
    stopped = await result_of(probe, stop.id)
    started = await result_of(probe, start.id)
    assert stopped.outcome is Outcome.SUCCEEDED and started.outcome is Outcome.SUCCEEDED
    assert lines(stopped) == [f"postgres stop: {OK}", f"data stop: {OK}", f"vip stop: {OK}"]
    assert lines(started) == [f"vip start: {OK}", f"data start: {OK}", f"postgres start: {OK}"]
    # Every stop on db1 was confirmed before the start was even sent to db2.
    codes = [(e.code, e.command_id) for e in probe.event_log if e.fault_id == fault.id]
    assert codes.index(("MRW-701", stop.id)) < codes.index(("MRW-201", start.id)), codes

    # What the system says now: the address, the state files, the agent's own record.
    assert VIP not in cluster.ns.addresses("db1") and VIP in cluster.ns.addresses("db2")
    assert not cluster.state_file("db1", "data").exists()
    assert cluster.state_file("db2", "data").exists()
    assert cluster.state_file("db2", "postgres").exists()
    assert agent_actions(cluster.state / "db1-postgres.env") == ["start", "stop"]
    assert agent_actions(cluster.state / "db2-postgres.env") == ["start"]
    await wait_status(amqp_url, lambda s: placement(s)["pg"] == "db2")


async def test_a_fault_restarts_the_group_stop_in_reverse_then_start_in_order(
    cluster: Cluster, probe: BusProbe
) -> None:
    await probe.publish(make_fault("db1", "SPS", "sps0", "path down"))
    (restart,) = await probe.next_commands(1, timeout=20)
    result = await result_of(probe, restart.id)
    assert result.outcome is Outcome.SUCCEEDED, result.detail
    assert lines(result) == [
        f"postgres stop: {OK}",
        f"data stop: {OK}",
        f"vip stop: {OK}",
        f"vip start: {OK}",
        f"data start: {OK}",
        f"postgres start: {OK}",
    ]
    assert agent_actions(cluster.state / "db1-postgres.env") == ["start", "stop", "start"]
    assert VIP in cluster.ns.addresses("db1")


async def test_a_resource_restarted_on_its_own_runs_that_agent_only(
    cluster: Cluster, probe: BusProbe
) -> None:
    await probe.publish(make_fault("db1", "HA/AM", "postgres", "not answering"))
    (restart,) = await probe.next_commands(1, timeout=20)
    assert restart.resource == "postgres"
    result = await result_of(probe, restart.id)
    assert result.outcome is Outcome.SUCCEEDED, result.detail
    assert lines(result) == [f"postgres stop: {OK}", f"postgres start: {OK}"]
    assert cluster.state_file("db1", "data").exists()


async def test_a_resource_whose_stop_fails_keeps_the_group_where_it_is(
    cluster: Cluster, probe: BusProbe, amqp_url: str
) -> None:
    # Someone replaced app's symlink with a file: the symlink agent refuses to stop (exit 5).
    link = cluster.state / "db1-app.link"
    link.unlink()
    link.write_text("not a link\n")
    await probe.publish(make_fault("db1", "FC", "host3", "port offline"))
    event = await probe.wait_event("MRW-310", timeout=60)
    assert "NOT started elsewhere" in event.text
    assert "applink stop: exit 5 (OCF_ERR_INSTALLED)" in event.text  # and says why
    (stop,) = await probe.next_commands(1, timeout=5)
    result = await result_of(probe, stop.id)
    assert result.outcome is Outcome.FAILED
    first, second = result.detail.splitlines()
    assert first.startswith("applink stop: exit 5 (OCF_ERR_INSTALLED): ")
    assert "exists but is not a symbolic link" in first  # the agent's own exit reason
    assert second == "not stopped, since applink did not stop: appdata"
    await probe.no_more_commands(2.0)  # no start on db2
    assert cluster.state_file("db1", "appdata").exists()
    assert not cluster.state_file("db2", "appdata").exists()
    status = await wait_status(amqp_url, lambda s: placement(s)["app"] == "db1")
    assert placement(status)["app"] == "db1"


async def test_probes_report_resources_killed_behind_mrwbus_back(
    cluster: Cluster, probe: BusProbe, amqp_url: str, tmp_path: Path
) -> None:
    cluster.state_file("db1", "postgres").unlink()  # postgres died
    once = await mrwbus(
        "agent", "--once", "--server", "db1", "--config", str(cluster.config), cwd=tmp_path
    )
    assert once.status == 0, once
    assert "db1 pg: running" in once.stdout  # half up is up: vip and data are still there
    assert "  postgres (pacemaker:Dummy): not running, monitor exit 7 (OCF_NOT_RUNNING)" in (
        once.stdout
    )
    assert "  vip (heartbeat:IPaddr2): running, monitor exit 0 (OCF_SUCCESS)" in once.stdout

    # The rest of the group goes too, behind mrwbus's back: the probe tells the service.
    cluster.state_file("db1", "data").unlink()
    done = await mrwbus(
        "resources", "stop", "vip", "--server", "db1", "--config", str(cluster.config), cwd=tmp_path
    )
    assert done.status == 0, done
    event = await probe.wait_event("MRW-604", timeout=30, group="pg")
    assert event.server == "db1"
    status = await wait_status(amqp_url, lambda s: placement(s)["pg"] is None)
    assert placement(status)["pg"] is None


async def test_check_config_refuses_a_missing_required_parameter(
    tmp_path: Path, ns: Namespaces
) -> None:
    config = tmp_path / "pg.yaml"
    config.write_text(
        walkthrough_yaml(tmp_path, ns).replace(
            f"params: {{ip: {VIP}, cidr_netmask: 32, nic: lo}}",
            "params: {cidr_netmask: 32, nic: lo}",
        )
    )
    ran = await mrwbus("check-config", str(config), cwd=tmp_path)
    assert ran.status == 1
    assert (
        ran.stderr.strip() == f"{config}: resources.vip.params.ip: is required by heartbeat:IPaddr2"
    )
    # The agent makes the same check for its server, and refuses to start.
    agent = await mrwbus(
        "agent", "--once", "--server", "db2", "--config", str(config), cwd=tmp_path
    )
    assert agent.status == 1
    assert agent.stderr.strip() == (
        f"{config}: resources.vip.params.ip: is required by heartbeat:IPaddr2"
    )
    (tmp_path / "good.yaml").write_text(walkthrough_yaml(tmp_path, ns))
    good = await mrwbus("check-config", str(tmp_path / "good.yaml"), cwd=tmp_path)
    assert (good.status, good.stdout.strip()) == (0, "OK")
