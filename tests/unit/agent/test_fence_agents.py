"""The agent's half of fencing, without a BMC: who may fence whom, the fence agent's stdin, and
the password that never leaves it. (tests/integration/test_fencing.py drives real BMCs.)"""

from __future__ import annotations

import asyncio
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mrwbus.agent.acceptance import SERVICE_USER, refusal
from mrwbus.agent.fence_agents import FenceAgentHandler, scrubbed, stdin_lines
from mrwbus.config.loading import parse_config
from mrwbus.config.model import ClusterConfig
from mrwbus.messages import Action, FenceAction, Outcome, PowerState, RecoveryCommand

T0 = datetime(2026, 12, 6, tzinfo=UTC)


def config(
    password_file: str = "/etc/mrwbus/bmc/s1", agent: str = "fence_ipmilan"
) -> ClusterConfig:
    return parse_config(
        f"""
servers:
  s1:
    bmc:
      fence_agent: {agent}
      address: 192.0.2.11
      port: 623
      username: admin
      password_file: {password_file}
      options: {{lanplus: "1", cipher: "3"}}
      fenced_by: [s2]
      timeout: 5s
  s2: {{}}
  s3: {{}}
"""
    )


def fence(server: str = "s2", target: str = "s1", **fields: Any) -> RecoveryCommand:
    values: dict[str, Any] = {
        "id": "c1",
        "fault_id": "f1",
        "monitor": "_",
        "server": server,
        "action": Action.FENCE,
        "target": target,
        "fence_action": FenceAction.OFF,
        "issued_at": T0,
    }
    return RecoveryCommand.model_validate({**values, **fields})


def test_a_peer_named_in_fenced_by_may_fence_from_the_service() -> None:
    assert refusal(fence(), SERVICE_USER, config(), "s2", T0) is None


@pytest.mark.parametrize(
    ("command", "server", "why"),
    [
        (fence(server="s3"), "s3", "'s3' is not in servers.s1.bmc.fenced_by"),
        (fence(server="s1", target="s1"), "s1", "a server never fences itself"),
        (fence(server="s1", target="s2"), "s1", "'s2' has no bmc in the configuration"),
        (
            fence().model_copy(update={"action": Action.RESTART}),
            "s2",
            "only a fence acts on another server",
        ),
    ],
)
def test_a_fence_it_may_not_run_is_refused(command: RecoveryCommand, server: str, why: str) -> None:
    found = refusal(command, SERVICE_USER, config(), server, T0)
    assert found is not None and why in found


def test_a_fence_from_anyone_but_the_service_is_refused() -> None:
    found = refusal(fence(), "operator", config(), "s2", T0)
    assert found is not None and "only the service sends commands" in found


def test_the_fence_agent_reads_its_settings_and_password_on_stdin() -> None:
    bmc = config().bmc_of("s1")
    assert bmc is not None
    lines = stdin_lines(bmc, FenceAction.OFF, "pa ss=word").decode().splitlines()
    assert lines == [
        "action=off",
        "ip=192.0.2.11",
        "username=admin",
        "password=pa ss=word",
        "ipport=623",
        "lanplus=1",
        "cipher=3",
    ]


def test_the_password_is_scrubbed_from_what_the_fence_agent_said() -> None:
    assert scrubbed("Failed: login as admin with s3cret", "s3cret") == (
        "Failed: login as admin with ********"
    )


def fake_agent(folder: Path, body: str) -> str:
    """A `fence_fake` on PATH: records its stdin (in `$input` for `body`), argv and
    environment, then runs `body`."""
    program = folder / "fence_fake"
    program.write_text(
        "#!/bin/sh\n"
        "input=$(cat)\n"
        f'echo "$input" >> "{folder}/stdin"; echo "$@" >> "{folder}/argv"; env >> "{folder}/env"\n'
        + body
    )
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    return str(program)


@pytest.fixture
def fake_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    (tmp_path / "password").write_text("s3cret\n")
    return tmp_path


def run_fence(folder: Path) -> Any:
    handler = FenceAgentHandler(config(str(folder / "password"), "fence_fake"), "s2")
    return asyncio.run(handler(fence()))


def test_a_fence_succeeds_only_once_the_bmc_reports_the_power_off(fake_path: Path) -> None:
    # off succeeds; status then says off (exit 2)
    fake_agent(
        fake_path,
        'case "$input" in *action=status*) echo "Status: OFF"; exit 2;;'
        ' *) echo "Success: Powered OFF";; esac\n',
    )
    result = run_fence(fake_path)
    assert (result.outcome, result.power) == (Outcome.SUCCEEDED, PowerState.OFF)
    assert "fence_fake off: exit 0" in result.detail and "status: off" in result.detail
    sent = (fake_path / "stdin").read_text()
    assert "password=s3cret" in sent  # on stdin, and nowhere else:
    assert "s3cret" not in (fake_path / "argv").read_text() + (fake_path / "env").read_text()


def test_a_bmc_that_still_reports_the_power_on_is_no_fence(fake_path: Path) -> None:
    fake_agent(fake_path, "echo 'Status: ON with s3cret'; exit 0\n")
    result = run_fence(fake_path)
    assert (result.outcome, result.power) == (Outcome.FAILED, PowerState.ON)
    assert "s3cret" not in result.detail and "********" in result.detail


def test_an_unreadable_password_file_fails_without_running_anything(tmp_path: Path) -> None:
    handler = FenceAgentHandler(config(str(tmp_path / "missing")), "s2")
    result = asyncio.run(handler(fence()))
    assert result.outcome is Outcome.FAILED and "cannot read" in result.detail
