"""The closed recovery loop end to end: the real service and three real agent processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from mrwbus.bus.rpc import ask_service
from mrwbus.messages import ControlRequest, ControlVerb, Outcome, StatusReport, new_id
from mrwbus.relay import make_fault
from tests.integration.broker import BusProbe
from tests.integration.processes import Processes

pytestmark = pytest.mark.broker

SERVERS = {"server1", "server2", "server3"}


def cluster_yaml(*, fail_start_on: str = "none", restart_takes: float = 0) -> str:
    return f"""
servers:
  server1: {{server_group: site-a}}
  server2: {{server_group: site-a}}
  server3: {{server_group: site-b}}
security: {{verify_senders: false}}
groups:
  failover1: {{servers: [server1, server2, server3], resources: [app1]}}
  failover2: {{servers: [server3, server2], resources: [db2]}}
service:
  stop_timeout: 3s
  start_timeout: 10s
  heartbeat_timeout: 3s
monitors:
  nic: {{category: NIC, keyword: eth0, recovery: {{action: failover, target: failover1, max_failovers: 3}}}}
  fc: {{category: FC, recovery: {{action: restart, target: db2, max_restarts: 3, before_script: pre-check}}}}
  rs: {{category: HA/RS, recovery: {{action: script, target: all_groups, script: cleanup}}}}
  am: {{category: HA/AM, recovery: {{action: final_action, target: failover1, final_action: shutdown}}}}
agent:
  heartbeat_interval: 1s
  state_dir: state
  handlers:
    restart: {{run: 'echo "$MRWBUS_SERVER restart $MRWBUS_GROUP" >> actions.log; sleep {restart_takes}'}}
    failover.stop: {{run: 'echo "$MRWBUS_SERVER stop $MRWBUS_GROUP" >> actions.log'}}
    failover.start:
      run: 'echo "$MRWBUS_SERVER start $MRWBUS_GROUP" >> actions.log; test "$MRWBUS_SERVER" != {fail_start_on}'
    script: {{run: 'echo "$MRWBUS_SERVER script $MRWBUS_SCRIPT" >> actions.log'}}
    before_script: {{run: 'echo "$MRWBUS_SERVER before $MRWBUS_BEFORE_SCRIPT" >> actions.log; exit 1'}}
    final_action.shutdown: {{run: 'echo "$MRWBUS_SERVER shutdown" >> actions.log'}}
"""


Start = Callable[..., Awaitable[Processes]]


@pytest.fixture
async def start_cluster(amqp_url: str, tmp_path: Path, probe: BusProbe) -> AsyncIterator[Start]:
    """The service and an agent per server, as processes; waits until every agent reported."""
    started: list[Processes] = []

    async def start(**options: object) -> Processes:
        config = tmp_path / "cluster.yaml"
        config.write_text(cluster_yaml(**options))  # type: ignore[arg-type]
        processes = Processes(config, tmp_path, amqp_url)
        started.append(processes)
        await processes.service()
        for server in sorted(SERVERS):
            await processes.agent(server)
        await probe.wait_reports(SERVERS)
        await wait_status(amqp_url, lambda status: all(s.alive for s in status.servers))
        return processes

    yield start
    for processes in started:
        await processes.stop_all()


async def status_of(amqp_url: str) -> StatusReport:
    reply = await ask_service(amqp_url, ControlRequest(id=new_id(), verb=ControlVerb.STATUS))
    assert reply.status is not None
    return reply.status


async def wait_status(
    amqp_url: str, condition: Callable[[StatusReport], bool], timeout: float = 20.0
) -> StatusReport:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            status = await status_of(amqp_url)
            if condition(status):
                return status
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"status never reached the expected state: {status}")
        await asyncio.sleep(0.2)


def placement(status: StatusReport) -> dict[str, str | None]:
    return {row.group: row.server for row in status.groups}


def actions(tmp_path: Path) -> list[str]:
    log = tmp_path / "actions.log"
    return log.read_text().splitlines() if log.exists() else []


async def test_a_nic_fault_moves_the_group_stop_confirmed_before_start(
    start_cluster: Start, probe: BusProbe, amqp_url: str, tmp_path: Path
) -> None:
    await start_cluster()
    fault = make_fault("server1", "NIC", "eth0", "link down")
    await probe.publish(fault)
    done = await probe.wait_event("MRW-320", timeout=20)
    assert done.detail["to_server"] == "server2"

    assert actions(tmp_path) == ["server1 stop failover1", "server2 start failover1"]
    codes = [(e.code, e.command_id) for e in probe.event_log if e.fault_id == fault.id]
    stop_ok = next(i for i, (code, _) in enumerate(codes) if code == "MRW-701")
    start_issued = [i for i, (code, _) in enumerate(codes) if code == "MRW-201"][1]
    assert stop_ok < start_issued, codes  # the start was issued only after the stop's success
    status = await wait_status(amqp_url, lambda s: placement(s)["failover1"] == "server2")
    assert placement(status)["failover1"] == "server2"


async def test_a_source_agent_that_never_answers_keeps_the_group(
    start_cluster: Start, probe: BusProbe, amqp_url: str, tmp_path: Path
) -> None:
    processes = await start_cluster()
    await next(p for p in processes.started if p.name == "agent-server1").kill()
    await probe.publish(make_fault("server1", "NIC", "eth0"))
    event = await probe.wait_event("MRW-310", timeout=20)
    assert "NOT started elsewhere" in event.text
    assert not any("start" in line for line in actions(tmp_path))
    assert placement(await status_of(amqp_url))["failover1"] == "server1"


async def test_a_failed_start_moves_on_to_the_next_server(
    start_cluster: Start, probe: BusProbe, amqp_url: str, tmp_path: Path
) -> None:
    await start_cluster(fail_start_on="server2")
    await probe.publish(make_fault("server1", "NIC", "eth0"))
    failed = await probe.wait_event("MRW-313", timeout=20)
    assert failed.detail["to_server"] == "server2"
    done = await probe.wait_event("MRW-320", timeout=20)
    assert done.detail["to_server"] == "server3"
    assert actions(tmp_path) == [
        "server1 stop failover1",
        "server2 start failover1",
        "server3 start failover1",
    ]
    await wait_status(amqp_url, lambda s: placement(s)["failover1"] == "server3")


async def test_restart_script_and_before_script_through_the_agents(
    start_cluster: Start, probe: BusProbe, tmp_path: Path
) -> None:
    await start_cluster()
    await probe.publish(make_fault("server3", "FC", "hba1"))
    restarted = await probe.wait_event("MRW-701", timeout=20)
    assert restarted.server == "server3" and "restart" in restarted.text
    before = await probe.wait_event("MRW-703", timeout=5)
    assert "went on" in before.text

    await probe.publish(make_fault("server1", "HA/RS", "memory"))
    scripted = await probe.wait_event("MRW-701", timeout=20)
    assert scripted.monitor == "rs"
    assert actions(tmp_path) == [
        "server3 before pre-check",
        "server3 restart failover2",
        "server1 script cleanup",
    ]


async def test_a_final_action_on_the_last_healthy_server_is_suppressed(
    start_cluster: Start, probe: BusProbe, tmp_path: Path
) -> None:
    processes = await start_cluster()
    for process in processes.started:
        if process.name in ("agent-server2", "agent-server3"):
            await process.kill()
    silent: set[str | None] = set()
    while silent != {"server2", "server3"}:  # in whichever order their heartbeats stop
        silent.add((await probe.wait_event("MRW-601", timeout=15)).server)
    await probe.publish(make_fault("server1", "HA/AM", "app1"))
    suppressed = await probe.wait_event("MRW-305", timeout=20)
    assert "last healthy server" in suppressed.text
    await probe.no_more_commands(1.0)
    assert "server1 shutdown" not in actions(tmp_path)


async def test_an_agent_killed_mid_command_does_not_run_it_twice(
    start_cluster: Start, probe: BusProbe, tmp_path: Path
) -> None:
    processes = await start_cluster(restart_takes=30)
    await probe.publish(make_fault("server3", "FC", "hba1"))
    for _ in range(200):
        if "server3 restart failover2" in actions(tmp_path):
            break
        await asyncio.sleep(0.05)
    agent3 = next(p for p in processes.started if p.name == "agent-server3")
    await agent3.kill()
    await processes.agent("server3")

    result = await asyncio.wait_for(probe.results.get(), 20)
    while result.server != "server3" or result.outcome is Outcome.SUCCEEDED:
        result = await asyncio.wait_for(probe.results.get(), 20)
    assert result.outcome is Outcome.FAILED and "interrupted" in result.detail
    await asyncio.sleep(1)
    assert actions(tmp_path).count("server3 restart failover2") == 1


async def test_a_restarted_service_learns_where_groups_run(
    start_cluster: Start, probe: BusProbe, amqp_url: str
) -> None:
    processes = await start_cluster()
    await probe.publish(make_fault("server1", "NIC", "eth0"))
    await probe.wait_event("MRW-320", timeout=20)
    service = processes.started[0]
    assert await service.terminate() == 0
    await processes.service("service-again")
    # The configuration says failover1 starts on server1; the agents say server2.
    status = await wait_status(amqp_url, lambda s: placement(s)["failover1"] == "server2")
    assert placement(status) == {"failover1": "server2", "failover2": "server3"}
