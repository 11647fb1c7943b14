"""Probes (`agent.probes`): what the system says replaces what the journal believes."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrwbus.agent.probes import ProbeTable, ShellProbe, groups_probed
from mrwbus.agent.reference import build_reference_agent, print_probes
from mrwbus.config.loading import parse_config

CONFIG = """
servers: {db1: {}, db2: {}}
groups:
  pg: {servers: [db1, db2]}
  web: {servers: [db1]}
agent:
  handlers:
    probe: {run: 'test -f "$DIR/up-$MRWBUS_SERVER-$MRWBUS_GROUP"'}
  groups:
    web: {probe: {run: 'exit 0'}}
"""


async def test_a_shell_probe_reads_the_exit_status(tmp_path: Path) -> None:
    (tmp_path / "up").touch()
    assert await ShellProbe(f"test -f {tmp_path}/up", 5, "db1")("pg") is True
    assert await ShellProbe(f"test -f {tmp_path}/down", 5, "db1")("pg") is False
    assert await ShellProbe("sleep 5", 0.1, "db1")("pg") is None  # cannot tell


async def test_a_group_without_a_probe_or_with_a_failing_one_is_left_out() -> None:
    async def broken(group: str) -> bool | None:
        raise RuntimeError("no systemd here")

    table = ProbeTable()
    table.add(broken, "pg")
    assert await table.run(["pg", "web"]) == {}


def test_the_facts_replace_the_belief_only_where_they_were_seen() -> None:
    believed = frozenset({"pg", "web"})
    assert groups_probed(believed, {"pg": False}) == {"web"}
    assert groups_probed(frozenset(), {"pg": True, "web": False}) == {"pg"}


async def test_the_agent_follows_its_probes_before_it_connects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIR", str(tmp_path))
    agent = build_reference_agent(parse_config(CONFIG), "db1", "amqp://unused", state_dir=tmp_path)
    assert agent.active_groups == {"pg", "web"}  # the belief: both start on db1
    assert await agent.probe() == {"pg": False, "web": True}
    assert agent.active_groups == {"web"}


def test_once_prints_what_the_probes_see(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DIR", str(tmp_path))
    (tmp_path / "up-db2-pg").touch()
    print_probes(parse_config(CONFIG), "db2")
    assert capsys.readouterr().out == "db2 pg: running\n"


async def test_an_agent_with_no_group_of_its_configuration_warns_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio

    from mrwbus.agent.runtime import Agent

    agent = Agent("db1", "amqp://127.0.0.1:1/", tmp_path, listed_groups=["pg"])
    stop = asyncio.Event()
    stop.set()  # no session: the warning comes before it
    with caplog.at_level("WARNING", logger="mrwbus.agent.runtime"):
        await asyncio.wait_for(agent.run(stop), 10)
    assert "reports no group active while the configuration lists pg" in caplog.text
