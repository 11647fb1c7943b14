"""The closed loop finished, as an HA administrator writes it: two PostgreSQL servers, `db1` and
`db2`, group `pg`, through the real service and reference agents (separate processes).

The handlers are harmless: each keeps a file `up-<server>-<group>` while the group runs there
(the probe tests for it) and writes what it did to `actions.log`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from mrwbus.relay import make_fault
from tests.integration.broker import BusProbe
from tests.integration.processes import Processes
from tests.integration.test_closed_loop import actions, placement, status_of, wait_status

pytestmark = pytest.mark.broker

SERVERS = {"db1", "db2"}
UP = 'touch "up-$MRWBUS_SERVER-$MRWBUS_GROUP"'
LOG = 'echo "$MRWBUS_SERVER {what}" >> actions.log'


def pg_yaml(
    *,
    rearm_after: str = "null",
    exclude: str = "any_error",
    stop_timeout: str = "3s",
    probes: bool = True,
) -> str:
    probe = """    probe: {run: 'test -f "up-$MRWBUS_SERVER-$MRWBUS_GROUP"'}""" if probes else ""
    return f"""
servers: {{db1: {{}}, db2: {{}}}}
security: {{verify_senders: false}}
groups:
  pg: {{servers: [db1, db2], resources: [vip, postgres]}}
service:
  stop_timeout: {stop_timeout}
  start_timeout: 10s
  heartbeat_timeout: 3s
  exclude_destinations: {exclude}
monitors:
  sps:
    category: SPS
    recovery: {{action: restart, target: pg, max_restarts: 2, final_action: shutdown, rearm_after: {rearm_after}}}
  nic:
    category: NIC
    keyword: eth0
    recovery: {{action: failover, target: pg}}
  hba2:
    category: FC
    servers: {{db2: null}}
    recovery: {{action: script, target: all_groups, script: note-hba}}
agent:
  heartbeat_interval: 1s
  probe_interval: 1s
  state_dir: state
  handlers:
{probe}
    restart: {{run: '{LOG.format(what="restart $MRWBUS_GROUP")}; {UP}'}}
    failover.stop: {{run: '{LOG.format(what="stop $MRWBUS_GROUP")}; rm -f "up-$MRWBUS_SERVER-$MRWBUS_GROUP"'}}
    failover.start: {{run: '{LOG.format(what="start $MRWBUS_GROUP")}; {UP}'}}
    script: {{run: '{LOG.format(what="script $MRWBUS_SCRIPT")}'}}
    final_action.shutdown: {{run: '{LOG.format(what="shutdown")}; rm -f up-$MRWBUS_SERVER-*'}}
"""


Start = Callable[..., Awaitable[Processes]]


@pytest.fixture
async def start_pg(amqp_url: str, tmp_path: Path, probe: BusProbe) -> AsyncIterator[Start]:
    """The service and db1's and db2's agents; `running_on` says where pg really runs."""
    started: list[Processes] = []

    async def start(running_on: str = "db1", **options: object) -> Processes:
        config = tmp_path / "cluster.yaml"
        config.write_text(pg_yaml(**options))  # type: ignore[arg-type]
        (tmp_path / f"up-{running_on}-pg").touch()
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


async def test_a_probe_that_says_pg_runs_elsewhere_moves_the_placement(
    start_pg: Start, probe: BusProbe, amqp_url: str
) -> None:
    # db1's agent starts believing pg runs there (first in its list); the probes say db2.
    await start_pg(running_on="db2")
    status = await wait_status(amqp_url, lambda s: placement(s)["pg"] == "db2")
    assert placement(status)["pg"] == "db2"
    contradiction = await probe.wait_event("MRW-604", group="pg")
    assert contradiction.group == "pg"


async def test_a_flapping_device_climbs_restart_restart_final_action_and_pg_follows(
    start_pg: Start, probe: BusProbe, amqp_url: str, tmp_path: Path
) -> None:
    await start_pg(rearm_after="2s")
    steps = []
    for _ in range(3):
        fault = make_fault("db1", "SPS", "sps0", "path down")  # no recovery notice ever
        await probe.publish(fault)
        issued = await probe.wait_event("MRW-201", timeout=20, fault_id=fault.id)
        steps.append(issued.detail["description"])
        await probe.wait_event("MRW-701", timeout=20, fault_id=fault.id)
        if len(steps) < 3:
            await probe.wait_event("MRW-503", timeout=20, monitor="sps", server="db1")
    assert steps == ["restart of group pg", "restart of group pg", "final action shutdown"]

    follows = await probe.wait_event("MRW-321", timeout=20)
    assert follows.detail["to_server"] == "db2"
    await probe.wait_event("MRW-320", timeout=20, group="pg")
    assert actions(tmp_path) == [
        "db1 restart pg",
        "db1 restart pg",
        "db1 shutdown",
        "db2 start pg",
    ]
    log = [(e.code, e.text) for e in probe.event_log]
    shutdown_ok = next(
        i for i, (code, text) in enumerate(log) if code == "MRW-701" and "shutdown" in text
    )
    following = next(i for i, (code, _) in enumerate(log) if code == "MRW-321")
    assert shutdown_ok < following  # the start waited for the shutdown's success
    await wait_status(amqp_url, lambda s: placement(s)["pg"] == "db2")


async def test_an_unrelated_error_on_db2_blocks_the_failover_only_under_any_error(
    start_pg: Start, probe: BusProbe, amqp_url: str
) -> None:
    await start_pg(exclude="same_monitor")
    await probe.publish(make_fault("db2", "FC", "hba2"))  # hba2 goes to Error on db2
    await probe.wait_event("MRW-102", timeout=20, monitor="hba2")
    await probe.publish(make_fault("db1", "NIC", "eth0"))
    done = await probe.wait_event("MRW-320", timeout=20, group="pg")
    assert done.detail["to_server"] == "db2"
    await wait_status(amqp_url, lambda s: placement(s)["pg"] == "db2")


async def test_under_any_error_the_unrelated_error_blocks_it_and_says_why(
    start_pg: Start, probe: BusProbe
) -> None:
    await start_pg()
    await probe.publish(make_fault("db2", "FC", "hba2"))
    await probe.wait_event("MRW-102", timeout=20, monitor="hba2")
    await probe.publish(make_fault("db1", "NIC", "eth0"))
    refused = await probe.wait_event("MRW-302", timeout=20, group="pg")
    assert "exclude_destinations: any_error" in refused.text


async def test_place_corrects_a_group_and_is_refused_during_its_failover(
    start_pg: Start, probe: BusProbe, amqp_url: str, tmp_path: Path
) -> None:
    processes = await start_pg(stop_timeout="6s", probes=False)
    await next(p for p in processes.started if p.name == "agent-db1").kill()
    await probe.publish(make_fault("db1", "NIC", "eth0"))
    await probe.wait_event("MRW-201", timeout=20, group="pg")  # the stop, unanswered

    refused = await place(processes, "pg", "db2", "it runs on db2")
    assert refused.returncode != 0 and "in progress" in refused.stderr
    await probe.wait_event("MRW-310", timeout=20, group="pg")  # half-done: left on db1
    assert placement(await status_of(amqp_url))["pg"] == "db1"

    # The operator checked by hand: postgres is up on db2 (no probe can tell the service).
    done = await place(processes, "pg", "db2", "checked by hand: postgres is up on db2")
    assert done.returncode == 0, done.stderr
    placed = await probe.wait_event("MRW-406", timeout=10, group="pg")
    assert "checked by hand" in placed.text and placed.detail["before"] == "db1"
    await asyncio.sleep(2.5)  # a few heartbeats of db2's agent: the correction holds
    assert placement(await status_of(amqp_url))["pg"] == "db2"


class Ran:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


async def place(processes: Processes, group: str, server: str, reason: str) -> Ran:
    import os
    import sys

    env = dict(os.environ, MRWBUS_AMQP_URL=processes.amqp_url)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mrwbus",
        "place",
        group,
        server,
        "--reason",
        reason,
        env=env,
        cwd=processes.cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())
