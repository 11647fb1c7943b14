"""The agent's half of fencing: run another server's fence agent (fence-agents) against its BMC.

Every fence agent of the `fence-agents` package reads its settings from stdin, one `key=value`
a line (`action=off`, `ip=`, `ipport=`, `username=`, `password=`, and its own options such as
`lanplus=1`), and answers `action=status` with exit 0 (on) or 2 (off). The password is read
from the BMC's `password_file` on this server when the fence runs, written to the fence
agent's stdin, and nowhere else: not in argv, not in the environment, not in the result (the
fence agent's output is scrubbed of it), not in a log line.

A fence counts only once the BMC reports the power state the action should leave: the action
is tried twice within the BMC's `timeout`, then `action=status` reads the power back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import Mapping

from mrwbus.agent.handlers import HandlerResult
from mrwbus.agent.shell import run_program
from mrwbus.config.model import BmcConfig, ClusterConfig
from mrwbus.messages import FenceAction, FinalAction, Outcome, PowerState, RecoveryCommand

log = logging.getLogger(__name__)

SEARCH_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"
"""Where fence agents live besides PATH (Debian installs them in /usr/sbin)."""

STATUS_EXIT: Mapping[int, PowerState] = {0: PowerState.ON, 2: PowerState.OFF}
"""`action=status`: the fence-agents convention for the power state."""

ATTEMPTS = 2
RETRY_AFTER = 1.0
"""Seconds between two tries of the action (a BMC that dropped one request)."""

HIDDEN = "********"

QUIET_PYTHON = {"PYTHONWARNINGS": "ignore"}
"""Most fence agents are Python scripts: their deprecation warnings would crowd the detail."""


def fence_agent_path(program: str) -> str | None:
    """The fence agent's executable, looked up on PATH and in the sbin folders."""
    path = os.environ.get("PATH", "")
    return shutil.which(program, path=f"{path}:{SEARCH_PATH}" if path else SEARCH_PATH)


def stdin_lines(
    bmc: BmcConfig, action: FenceAction, password: str, extra: Mapping[str, str] = {}
) -> bytes:
    """The fence agent's settings, one `key=value` a line, as it reads them on stdin."""
    settings: dict[str, str] = {
        "action": action.value,
        "ip": bmc.address,
        "username": bmc.username,
        "password": password,
    }
    if bmc.port is not None:
        settings["ipport"] = str(bmc.port)
    settings.update(bmc.options)
    settings.update(extra)
    return "".join(f"{key}={value}\n" for key, value in settings.items()).encode()


def scrubbed(text: str, password: str) -> str:
    """`text` with the password replaced, whatever the fence agent echoed."""
    return text.replace(password, HIDDEN) if password else text


def read_password(bmc: BmcConfig) -> str:
    """The BMC password from its file (one line; the newline is not part of it)."""
    with open(bmc.password_file, encoding="utf-8") as file:
        return file.read().rstrip("\r\n")


def fence_readiness(config: ClusterConfig, target: str) -> str:
    """Whether this server could fence `target` now, for `mrwbus agent --once`: the fence
    agent installed, the password file readable (never read out)."""
    bmc = config.bmc_of(target)
    assert bmc is not None
    program = fence_agent_path(bmc.fence_agent)
    if program is None:
        return f"NOT READY: {bmc.fence_agent} is not installed"
    if not os.access(bmc.password_file, os.R_OK):
        return f"NOT READY: {bmc.password_file} cannot be read"
    return f"ready ({program}, {bmc.address})"


class FenceAgentHandler:
    """Runs the target's fence agent for a `fence` command sent to this server's agent."""

    def __init__(self, config: ClusterConfig, server: str) -> None:
        self.config = config
        self.server = server

    async def __call__(self, command: RecoveryCommand) -> HandlerResult:
        assert command.target is not None and command.fence_action is not None
        bmc = self.config.bmc_of(command.target)
        if bmc is None:
            return HandlerResult(Outcome.REFUSED, f"{command.target} has no bmc configured")
        program = fence_agent_path(bmc.fence_agent)
        if program is None:
            return HandlerResult.failed(f"{bmc.fence_agent} is not installed on {self.server}")
        try:
            password = read_password(bmc)
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            return HandlerResult.failed(f"cannot read {bmc.password_file}: {reason}")
        fence = _Fence(program, bmc, password, command)
        return await fence.run()


class _Fence:
    """One fence: the action, tried again once, then the power read back."""

    def __init__(
        self, program: str, bmc: BmcConfig, password: str, command: RecoveryCommand
    ) -> None:
        assert command.fence_action is not None
        self.program = program
        self.bmc = bmc
        self.password = password
        self.action = command.fence_action
        # A power cycle where the agent has one (fence_ipmilan's `method`), a reset otherwise.
        self.extra = (
            {"method": "cycle"}
            if command.final_action is FinalAction.BMC_POWER_CYCLE
            and bmc.fence_agent == "fence_ipmilan"
            else {}
        )
        self.deadline = time.monotonic() + bmc.timeout.total_seconds()
        self.lines: list[str] = []

    async def run(self) -> HandlerResult:
        name = self.bmc.fence_agent
        if self.action is not FenceAction.STATUS:
            for attempt in range(1, ATTEMPTS + 1):
                status, output = await self._agent(self.action, self.extra)
                self.lines.append(f"{name} {self.action.value}: {_exit(status)}{output}")
                if status == 0:
                    break
                if attempt < ATTEMPTS and self._left() > RETRY_AFTER:
                    await asyncio.sleep(RETRY_AFTER)
            else:
                return self._result(Outcome.TIMED_OUT if status is None else Outcome.FAILED)
        status, output = await self._agent(FenceAction.STATUS)
        power = STATUS_EXIT.get(status) if status is not None else None
        self.lines.append(f"{name} status: {power.value if power else _exit(status)}{output}")
        if power is None:
            return self._result(Outcome.FAILED)
        expected = self.action.expected_power
        outcome = Outcome.SUCCEEDED if expected in (None, power) else Outcome.FAILED
        return self._result(outcome, power)

    async def _agent(
        self, action: FenceAction, extra: Mapping[str, str] = {}
    ) -> tuple[int | None, str]:
        left = self._left()
        if left <= 0:
            return None, " (no time left within bmc.timeout)"
        ran = await run_program(
            [self.program],
            QUIET_PYTHON,
            left,
            stdin=stdin_lines(self.bmc, action, self.password, extra),
        )
        words = scrubbed(ran.last_lines(), self.password).strip()
        return ran.status, f" ({words})" if words else ""

    def _left(self) -> float:
        return self.deadline - time.monotonic()

    def _result(self, outcome: Outcome, power: PowerState | None = None) -> HandlerResult:
        detail = "; ".join(self.lines)
        if outcome is not Outcome.SUCCEEDED:
            log.warning("fence of %s: %s", self.bmc.address, detail)
        return HandlerResult(outcome, detail, power)


def _exit(status: int | None) -> str:
    if status is None:
        return "timed out"
    return "exit 0" if status == 0 else f"exit {status}"
