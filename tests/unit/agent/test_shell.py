"""The reference shell handler: a real `/bin/sh`, its environment, exit status and timeout."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from mrwbus.agent.shell import (
    DETAIL_CHARS,
    CommandScriptHandler,
    NamedScriptsOnly,
    ShellHandler,
    command_environment,
)
from mrwbus.config.model import HandlerConfig
from mrwbus.messages import Category, Outcome
from tests.unit.agent.conftest import CommandFactory

VARIABLES = [
    "COMMAND_ID",
    "FAULT_ID",
    "MONITOR",
    "SERVER",
    "ACTION",
    "STEP",
    "GROUP",
    "RESOURCE",
    "FROM_SERVER",
    "TO_SERVER",
    "FINAL_ACTION",
    "SCRIPT",
]


def alive(pid: int) -> bool:
    """Running: a zombie (killed, not yet reaped by whoever inherited it) does not count."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_the_command_facts_are_environment_variables(
    make_command: CommandFactory, tmp_path: Path
) -> None:
    out = tmp_path / "env"
    dump = "; ".join(f'echo "{name}=${{MRWBUS_{name}-unset}}"' for name in VARIABLES)
    handler = ShellHandler(f"{{ {dump}; }} > {out}", timeout=10)
    failover = make_command(
        id="cmd-42",
        action="failover",
        step="start",
        from_server="server2",
        to_server="server1",
        resource="fip1",
    )

    result = await handler(failover)
    assert result.outcome is Outcome.SUCCEEDED
    seen = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert seen == {
        "COMMAND_ID": "cmd-42",
        "FAULT_ID": "fault-1",
        "MONITOR": "mrw1",
        "SERVER": "server1",
        "ACTION": "failover",
        "STEP": "start",
        "GROUP": "failover1",
        "RESOURCE": "fip1",
        "FROM_SERVER": "server2",
        "TO_SERVER": "server1",
        "FINAL_ACTION": "",  # absent: set, and empty
        "SCRIPT": "",
    }


def test_the_environment_of_a_final_action(make_command: CommandFactory) -> None:
    variables = command_environment(
        make_command(action="final_action", final_action="reboot", group=None, script=None)
    )
    assert variables["MRWBUS_FINAL_ACTION"] == "reboot"
    assert variables["MRWBUS_GROUP"] == ""
    assert variables["MRWBUS_STEP"] == ""


def test_the_environment_tells_the_fault(make_command: CommandFactory) -> None:
    command = make_command().model_copy(
        update={"category": Category.SPS, "device": "sps0", "message": "path down"}
    )
    variables = command_environment(command)
    assert variables["MRWBUS_CATEGORY"] == "SPS"
    assert variables["MRWBUS_DEVICE"] == "sps0"
    assert variables["MRWBUS_MESSAGE"] == "path down"


async def test_the_rest_of_the_environment_is_inherited(
    make_command: CommandFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SITE_TOKEN", "abc")
    result = await ShellHandler('test "$SITE_TOKEN" = abc', timeout=10)(make_command())
    assert result.outcome is Outcome.SUCCEEDED


async def test_exit_zero_succeeds_with_the_last_output(make_command: CommandFactory) -> None:
    result = await ShellHandler("echo starting; echo started app1", timeout=10)(make_command())
    assert result.outcome is Outcome.SUCCEEDED
    assert result.detail == "starting\nstarted app1"


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        ("echo quiet; echo 'disk not found' >&2; exit 3", "exit status 3: disk not found"),
        ("echo only stdout; exit 1", "exit status 1: only stdout"),
        ("exit 4", "exit status 4"),
        ("no-such-command-here", "exit status 127: "),
        ("kill -9 $$", "killed by signal 9"),
    ],
)
async def test_a_nonzero_exit_fails_with_the_last_words(
    make_command: CommandFactory, line: str, detail: str
) -> None:
    result = await ShellHandler(line, timeout=10)(make_command())
    assert result.outcome is Outcome.FAILED
    assert result.detail.startswith(detail)


async def test_the_detail_keeps_only_the_last_lines_within_bounds(
    make_command: CommandFactory,
) -> None:
    line = (
        "pad=$(printf '%080d' 0); i=0; "
        'while [ $i -lt 5000 ]; do echo "line $i $pad" >&2; i=$((i+1)); done; exit 1'
    )
    result = await ShellHandler(line, timeout=30)(make_command())
    assert result.outcome is Outcome.FAILED
    assert len(result.detail) <= len("exit status 1: ") + DETAIL_CHARS
    assert result.detail.rstrip().endswith("0" * 10)
    assert "line 4999" in result.detail
    assert "line 4990" not in result.detail


async def test_a_timeout_kills_the_whole_process_group(
    make_command: CommandFactory, tmp_path: Path
) -> None:
    pidfile = tmp_path / "child"
    line = f"echo working; sleep 60 & echo $! > {pidfile}; wait"
    handler = ShellHandler(line, timeout=0.5, kill_grace=0.2)

    began = time.monotonic()
    result = await handler(make_command())
    assert time.monotonic() - began < 5
    assert result.outcome is Outcome.TIMED_OUT
    assert result.detail == ("did not finish within 0.5 s; its process group was killed: working")
    child = int(pidfile.read_text())
    assert not alive(child)


async def test_a_handler_ignoring_sigterm_is_killed(make_command: CommandFactory) -> None:
    handler = ShellHandler("trap '' TERM; sleep 60", timeout=0.3, kill_grace=0.3)
    began = time.monotonic()
    result = await handler(make_command())
    assert result.outcome is Outcome.TIMED_OUT
    assert time.monotonic() - began < 5


async def test_cancelling_kills_the_process(make_command: CommandFactory, tmp_path: Path) -> None:
    pidfile = tmp_path / "shell"
    running = asyncio.create_task(
        ShellHandler(f"echo $$ > {pidfile}; sleep 60", 30)(make_command())
    )
    while not pidfile.exists() or not pidfile.read_text().strip():
        await asyncio.sleep(0.02)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert not alive(int(pidfile.read_text()))


def test_from_config_takes_the_timeout() -> None:
    handler = ShellHandler.from_config(
        HandlerConfig.model_validate({"run": "true", "timeout": "2m"})
    )
    assert (handler.run, handler.timeout) == ("true", 120.0)


async def test_the_command_own_script_runs(make_command: CommandFactory, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    line = f"echo $MRWBUS_MONITOR > {marker}"
    script = make_command(action="script", script=line)
    result = await CommandScriptHandler("script", 10)(script)
    assert result.outcome is Outcome.SUCCEEDED
    assert marker.read_text() == "mrw1\n"

    before_handler = CommandScriptHandler("before_script", 10)
    before = await before_handler(make_command(before_script="exit 2"))
    assert before.outcome is Outcome.FAILED
    nothing = await before_handler(make_command())
    assert nothing.outcome is Outcome.REFUSED


async def test_a_script_the_configuration_does_not_name_is_refused(
    make_command: CommandFactory, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    handler = NamedScriptsOnly(
        CommandScriptHandler("script", 10), "script", frozenset({"/opt/recover.sh"})
    )
    result = await handler(make_command(action="script", script=f"touch {marker}"))
    assert result.outcome is Outcome.REFUSED
    assert "not named by any monitor" in result.detail
    assert not marker.exists()


async def test_handlers_do_not_see_the_broker_password(
    make_command: CommandFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A password no environment holds by chance (a container name may well contain "secret").
    password = "pw-7f3c9e1d0b"
    monkeypatch.setenv("MRWBUS_AMQP_URL", f"amqp://agent:{password}@broker/")
    seen = tmp_path / "env"
    await ShellHandler(f"env > {seen}", 10)(make_command())
    assert password not in seen.read_text()
    assert "MRWBUS_MONITOR=mrw1" in seen.read_text()
