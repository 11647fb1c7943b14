"""The Pacemaker backend against a real two-node Pacemaker (tests/integration/pacemaker_cluster.py):
the service in this process, an agent inside each node, faults published as a relay would.
One cluster for the module (each start costs seconds); every test resets the resources first.
The fence test runs last: it leaves node1 fenced."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mrwbus.config.loading import parse_config
from mrwbus.messages import CommandResult, Outcome, RecoveryCommand
from mrwbus.relay import make_fault
from tests.integration.broker import BusProbe
from tests.integration.conftest import running_service
from tests.integration.pacemaker_cluster import GROUP, PacemakerCluster, start_agent
from tests.integration.test_closed_loop import placement, status_of, wait_status

pytestmark = pytest.mark.broker

CONFIG = """
servers: {node1: {}, node2: {}}
security: {verify_senders: false}
groups:
  grp1: {servers: [node1, node2]}
service: {stop_timeout: 40s, start_timeout: 40s, heartbeat_timeout: 6s}
monitors:
  nic: {category: NIC, keyword: eth0, recovery: {action: failover, target: grp1}}
  app: {category: HA/AM, recovery: {action: restart, target: grp1}}
  hba: {category: FC, recovery: {action: final_action, target: grp1, final_action: stop_cluster_service}}
  sps: {category: SPS, recovery: {action: final_action, target: grp1, final_action: bmc_power_off}}
agent:
  heartbeat_interval: 1s
  probe_interval: 1s
  state_dir: state
  backend: pacemaker
  pacemaker: {settle_timeout: 30s}
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[PacemakerCluster]:
    """One two-node cluster for the module, stopped (with its BMCs) whatever happened."""
    cluster = PacemakerCluster.prepare()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def mrwbus(
    cluster: PacemakerCluster, amqp_url: str, tmp_path: Path, probe: BusProbe
) -> AsyncIterator[PacemakerCluster]:
    """The cluster reset, the service running, an agent in each node, all reported."""
    await asyncio.to_thread(cluster.reset)
    config_file = tmp_path / "cluster.yaml"
    config_file.write_text(CONFIG)
    config = parse_config(CONFIG, "cluster.yaml")
    agents = []
    async with running_service(config, amqp_url):
        try:
            for node in ("node1", "node2"):
                agents.append(await start_agent(cluster, node, config_file, amqp_url))
            await probe.wait_reports({"node1", "node2"}, timeout=30)
            await wait_status(amqp_url, lambda s: placement(s)[GROUP] == "node1")
            yield cluster
        finally:
            for agent in agents:
                if agent.returncode is None:
                    agent.terminate()
                    try:
                        await asyncio.wait_for(agent.wait(), 20)
                    except TimeoutError:
                        agent.kill()
            for log in tmp_path.glob("agent-*.log"):
                print(f"--- {log.name} ---\n{log.read_text()[-3000:]}")


async def result_of(probe: BusProbe, server: str, timeout: float = 40) -> CommandResult:
    return (await results_of(probe, {server}, timeout))[server]


async def results_of(
    probe: BusProbe, servers: set[str], timeout: float = 40
) -> dict[str, CommandResult]:
    """The next result of each of `servers`, whichever comes first."""
    found: dict[str, CommandResult] = {}

    async def collect() -> None:
        while not servers <= found.keys():
            result = await probe.results.get()
            found.setdefault(result.server, result)

    try:
        await asyncio.wait_for(collect(), timeout)
    except TimeoutError:
        raise AssertionError(
            f"results of {sorted(servers)} within {timeout:g} s: {found}"
        ) from None
    return found


async def test_a_nic_fault_moves_the_group_and_a_later_move_by_a_person_stays(
    mrwbus: PacemakerCluster, probe: BusProbe, amqp_url: str
) -> None:
    await probe.publish(make_fault("node1", "NIC", "eth0", "link down"))
    done = await probe.wait_event("MRW-320", timeout=40, group=GROUP)
    assert done.detail["to_server"] == "node2"
    assert mrwbus.status().unit(GROUP).runs_wholly_on("node2")  # type: ignore[union-attr]
    assert "mrwbus-move-grp1" not in mrwbus.constraint_ids()  # Pacemaker's placement is free
    await wait_status(amqp_url, lambda s: placement(s)[GROUP] == "node2")

    # A person moves it back; nothing of mrwbus pins it to node2.
    await asyncio.to_thread(mrwbus.run, "crm_resource", "-r", GROUP, "--move", "--node", "node1")
    await asyncio.to_thread(mrwbus.wait, lambda s: s.unit(GROUP).runs_wholly_on("node1"))
    await asyncio.to_thread(mrwbus.run, "crm_resource", "-r", GROUP, "--clear")
    await asyncio.sleep(3)
    assert mrwbus.where() == {"node1"}
    await wait_status(amqp_url, lambda s: placement(s)[GROUP] == "node1")


async def test_a_restart_is_pacemakers_restart(mrwbus: PacemakerCluster, probe: BusProbe) -> None:
    before = mrwbus.starts_on("node1")
    await probe.publish(make_fault("node1", "HA/AM", "app", "hung"))
    result = await result_of(probe, "node1")
    assert result.outcome is Outcome.SUCCEEDED, result.detail
    assert "restarted by Pacemaker; runs on node1" in result.detail
    assert mrwbus.starts_on("node1") == before + 1


async def test_a_ban_refuses_the_move_with_pacemakers_reason(
    mrwbus: PacemakerCluster, probe: BusProbe, amqp_url: str
) -> None:
    await asyncio.to_thread(mrwbus.crm, f"location keep-off-node2 {GROUP} -inf: node2")
    await probe.publish(make_fault("node1", "NIC", "eth0", "link down"))
    refused = await probe.wait_event("MRW-310", timeout=40, group=GROUP)
    assert "location constraint keep-off-node2 bans grp1 from node2" in refused.text
    assert mrwbus.where() == {"node1"}
    assert "mrwbus-move-grp1" not in mrwbus.constraint_ids()
    assert placement(await status_of(amqp_url))[GROUP] == "node1"


async def test_two_agents_asked_for_the_same_move_move_it_once(
    mrwbus: PacemakerCluster, probe: BusProbe
) -> None:
    before = mrwbus.starts_on("node2")
    from mrwbus.core.decision import recovery_command
    from mrwbus.messages import Action, utc_now
    from mrwbus.messages.commands import CommandStep

    for server in ("node1", "node2"):
        command: RecoveryCommand = recovery_command(
            fault_id=f"twice-{server}", monitor="nic", server=server, action=Action.FAILOVER,
            group=GROUP, step=CommandStep.STOP, from_server="node1", to_server="node2",
            issued_at=utc_now(),
        )  # fmt: skip
        await probe.publish_command(command)
    results = await results_of(probe, {"node1", "node2"})
    assert all(r.outcome is Outcome.SUCCEEDED for r in results.values()), results
    assert mrwbus.status().unit(GROUP).runs_wholly_on("node2")  # type: ignore[union-attr]
    assert mrwbus.starts_on("node2") == before + 1


async def test_a_failed_monitor_is_pacemakers_to_recover_and_shows_as_a_report(
    mrwbus: PacemakerCluster, probe: BusProbe, amqp_url: str
) -> None:
    mrwbus.run("rm", "-f", "/var/run/Dummy-d1.state", node="node1")
    status = await wait_status(
        amqp_url,
        lambda s: any(
            "d1 monitor on node1 failed" in n for r in s.servers for n in r.executor_notes
        ),
    )
    assert not [m for m in status.monitors if m.status == "Error"]  # no fault, no recovery of ours
    assert all(e.code != "MRW-201" for e in probe.event_log)
    await asyncio.to_thread(mrwbus.wait, lambda s: s.unit(GROUP).runs_wholly_on("node1"))


async def test_stop_cluster_service_puts_the_node_in_standby(
    mrwbus: PacemakerCluster, probe: BusProbe, amqp_url: str
) -> None:
    await probe.publish(make_fault("node1", "FC", "host3", "HBA dead"))
    result = await result_of(probe, "node1")
    assert result.outcome is Outcome.SUCCEEDED, result.detail
    status = mrwbus.status()
    assert status.nodes["node1"].standby
    assert status.unit(GROUP).runs_wholly_on("node2")  # type: ignore[union-attr]
    await wait_status(amqp_url, lambda s: placement(s)[GROUP] == "node2")


async def test_zz_a_bmc_final_action_fences_through_pacemakers_stonith(
    mrwbus: PacemakerCluster, probe: BusProbe, amqp_url: str
) -> None:
    """Last: node1 is fenced (its Pacemaker stops itself, and its agent with it)."""
    await probe.publish(make_fault("node1", "SPS", "path0", "all paths lost"))
    await asyncio.to_thread(
        mrwbus.wait,
        lambda s: s.unit(GROUP).runs_wholly_on("node2") and not s.nodes["node1"].online,  # type: ignore[union-attr]
        60,
    )
    assert "power_off" in mrwbus.bmc_log("node1")
    history = mrwbus.run("stonith_admin", "--history", "node1")
    assert "successful" in history, history
    await wait_status(amqp_url, lambda s: placement(s)[GROUP] == "node2", timeout=30)
