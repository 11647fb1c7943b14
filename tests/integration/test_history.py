"""The history the real service writes: every fault, decision and result in order, read back by
`mrwbus history` (a range, a filter, one fault's story, an export) and replayed by `what-if`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aio_pika
import pytest

from mrwbus import cli
from mrwbus.bus.history_reader import fault_story, stream_end
from mrwbus.bus.topology import HISTORY
from mrwbus.messages import Outcome
from mrwbus.relay import make_fault
from tests.integration.broker import BusProbe
from tests.integration.conftest import RunningService

pytestmark = pytest.mark.broker

CONFIG = """
security: {verify_senders: false}
servers:
  server1: {server_group: site-a}
  server2: {server_group: site-a}
groups:
  g1: {servers: [server1, server2]}
monitors:
  mrw1:
    category: NIC
    keyword: eth0
    recovery: {action: restart, target: g1, max_restarts: MAX, final_action: none}
  mrw2:
    category: FC
    recovery: {action: failover, target: g1, max_failovers: 1}
"""


async def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert await asyncio.to_thread(cli.main, argv) == 0
    return capsys.readouterr().out


async def test_the_history_tells_each_faults_story_and_what_if_replays_it(
    start_service: RunningService,
    probe: BusProbe,
    amqp_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await start_service(CONFIG.replace("MAX", "1"))
    await probe.publish(make_fault("server1", "NIC", "eth0", fault_id="f-restart"))
    (restart,) = await probe.next_commands(1)
    await probe.answer(restart)
    await probe.publish(make_fault("server1", "FC", "host1", fault_id="f-failover"))
    (stop,) = await probe.next_commands(1)
    await probe.answer(stop)
    (start,) = await probe.next_commands(1)
    await probe.answer(start, Outcome.SUCCEEDED)
    await probe.wait_event("MRW-320")  # the failover is over
    await probe.publish(make_fault("server1", "HA/AM", "app", fault_id="f-unmatched"))
    await probe.wait_event("MRW-110")
    await probe.publish(make_fault("server2", "NIC", "eth0", fault_id="f-second"))
    (second,) = await probe.next_commands(1)
    await probe.answer(second)
    await probe.wait_event("MRW-701", command_id=second.id)
    await run_cli(["clear", "mrw1", "--amqp-url", amqp_url], capsys)  # counts kept
    await probe.publish(make_fault("server2", "NIC", "eth0", fault_id="f-exhausted"))
    await asyncio.sleep(0.5)  # its decision (no command) is journaled and in the history

    connection = await aio_pika.connect(amqp_url)
    try:
        assert await stream_end(connection, HISTORY) is not None
        story = await fault_story(connection, "f-failover")
    finally:
        await connection.close()
    kinds = [record["k"] for record in story.records]
    assert kinds[:2] == ["fault", "decision"] and kinds.count("result") == 2, kinds
    commands = [c["id"] for record in story.records for c in record.get("commands", ())]
    assert commands == [stop.id, start.id]
    assert story.complete

    shown = await run_cli(["history", "show", "f-failover", "--amqp-url", amqp_url], capsys)
    assert "failover stop g1 on server1" in shown and "failover start g1 on server2" in shown

    listed = await run_cli(
        ["history", "--since", "10m", "--monitor", "mrw1", "--json", "--amqp-url", amqp_url],
        capsys,
    )
    records = [json.loads(text) for text in listed.splitlines()]
    faults = [r["fault"]["id"] for r in records if r["k"] == "fault"]
    assert faults == ["f-restart", "f-second", "f-exhausted"]
    unmatched = await run_cli(["history", "--code", "MRW-110", "--amqp-url", amqp_url], capsys)
    assert "f-unmatched" in unmatched or "decision - on server1" in unmatched

    export = tmp_path / "history.jsonl"
    export.write_text(await run_cli(["history", "export", "--amqp-url", amqp_url], capsys))
    same = tmp_path / "same.yaml"
    same.write_text(CONFIG.replace("MAX", "1"))
    replayed = await run_cli(["what-if", "--config", str(same), "--history", str(export)], capsys)
    assert "5 faults replayed, 0 decisions changed" in replayed

    raised = tmp_path / "raised.yaml"
    raised.write_text(CONFIG.replace("MAX", "2"))
    changed = await run_cli(
        ["what-if", "--config", str(raised), "--since", "1h", "--amqp-url", amqp_url], capsys
    )
    assert "5 faults replayed, 1 decisions changed" in changed, changed
    assert "fault f-exhausted" in changed
    assert "none  ->  restart g1 on server2" in changed
    assert "assumed succeeded: restart g1 on server2" in changed
