"""The operators' command line against a running service on the real broker."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from yarl import URL

from mrwbus import cli
from mrwbus.core.status import shown_status
from mrwbus.messages import Action
from mrwbus.relay import make_fault
from tests.integration.broker import BusProbe
from tests.integration.conftest import RunningService

pytestmark = pytest.mark.broker

CLUSTER = """
servers:
  server1: {server_group: site-a}
  server2: {server_group: site-a}
security: {verify_senders: false}
groups:
  failover1: {servers: [server1, server2], resources: [app1]}
monitors:
  mrw1:
    category: NIC
    keyword: eth0
    recovery: {action: restart, target: failover1, max_restarts: 5}
  mrw2:
    category: FC
    recovery: {action: restart, target: app1}
"""


async def mrwbus(
    amqp_url: str, *argv: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """The real command line, in a thread, as an operator runs it."""
    code = await asyncio.to_thread(cli.main, [*argv, "--amqp-url", amqp_url])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_status_shows_error_groups_and_servers(
    start_service: RunningService,
    probe: BusProbe,
    amqp_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await start_service(CLUSTER)
    await probe.publish(make_fault("server1", "NIC", "eth0", "link down"))
    await probe.next_commands(1)

    code, out, _ = await mrwbus(amqp_url, "status", capsys=capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Monitors (1 in Error)"
    row = next(line.split() for line in lines if line.startswith("mrw1") and "server1" in line)
    assert row[:5] == ["mrw1", "server1", "NIC", "Error", "1"]
    assert any(line.split() == ["failover1", "server1"] for line in lines)
    assert any(line.split()[:3] == ["server2", "site-a", "alive"] for line in lines)
    node = f"{URL(amqp_url).host}:{URL(amqp_url).port}"
    assert f"Service replica answering on node {node}" in lines

    code, out, _ = await mrwbus(amqp_url, "status", "--json", capsys=capsys)
    report = json.loads(out)
    errors = [(m["monitor"], m["server"]) for m in report["monitors"] if m["status"] == "Error"]
    assert errors == [("mrw1", "server1")]


async def test_suspend_records_faults_but_acts_on_none_until_resumed(
    start_service: RunningService,
    probe: BusProbe,
    amqp_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    service = await start_service(CLUSTER)
    code, out, _ = await mrwbus(amqp_url, "suspend", "mrw1", capsys=capsys)
    assert (code, out.strip()) == (0, "mrw1: suspended.")
    await probe.wait_event("MRW-404")
    await probe.publish(make_fault("server1", "NIC", "eth0"))
    await probe.wait_event("MRW-104")
    await probe.no_more_commands()
    assert shown_status(service.cluster, "mrw1", "server1") == "Suspended"
    assert service.cluster.state_of("mrw1", "server1").faults == 1

    code, _, _ = await mrwbus(amqp_url, "resume", "--all", capsys=capsys)
    assert code == 0
    await probe.wait_event("MRW-405")
    await probe.publish(make_fault("server1", "NIC", "eth0"))
    (command,) = await probe.next_commands(1)
    assert command.action is Action.RESTART


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["--monitor", "mrw1"], ["MRW-101", "MRW-102", "MRW-201"]),
        # The decision's batch is routed by its first event (fault.mrw1) and, through BCC, by
        # the others: a queue bound to command.* alone still gets it, and keeps only MRW-201.
        (["--monitor", "mrw1", "--kind", "command"], ["MRW-201"]),
    ],
)
async def test_watch_prints_one_line_per_event_with_filters(
    start_service: RunningService,
    probe: BusProbe,
    amqp_url: str,
    tmp_path: Path,
    filters: list[str],
    expected: list[str],
) -> None:
    await start_service(CLUSTER)
    out = tmp_path / "watch.out"
    with out.open("wb") as sink:
        watcher = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mrwbus",
            "watch",
            *filters,
            "--amqp-url",
            amqp_url,
            stdout=sink,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            await asyncio.sleep(2)  # its queue is bound
            await probe.publish(make_fault("server1", "FC", "hba0"))  # mrw2: filtered out
            await probe.publish(make_fault("server1", "NIC", "eth0"))
            for _ in range(100):
                if "MRW-201" in out.read_text():
                    break
                await asyncio.sleep(0.1)
            await probe.wait_event("MRW-201")
            await asyncio.sleep(0.3)  # anything else it would print arrives by now
        finally:
            watcher.terminate()
            await watcher.wait()
    lines = out.read_text().splitlines()
    codes = [line.split()[2] for line in lines]
    assert codes == expected, lines
    assert all("mrw1@server1" in line for line in lines)
    assert "restart of group failover1 issued to server1" in lines[-1]


async def test_errors_are_one_sentence(amqp_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = await mrwbus(amqp_url, "status", capsys=capsys)
    assert code == 1
    assert (
        err.strip()
        == "mrwbus: the mrwbus service is not running (it has never started on this broker)"
    )

    code = await asyncio.to_thread(
        cli.main, ["status", "--amqp-url", "amqp://guest:guest@127.0.0.1:1/"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 3  # broker unreachable, documented in `mrwbus --help`
    assert err.startswith("mrwbus: cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1/")
    assert "Traceback" not in err and "\n" not in err
