"""The reference handler: a command line run by `/bin/sh -c`, with a timeout.

The command's facts reach the command line as environment variables (`command_environment`),
so a handler is written as, for example, `systemctl restart "app-$MRWBUS_GROUP"`. The process
runs in a process group of its own: on timeout the whole group gets SIGTERM and, after a short
grace, SIGKILL, so a handler's children do not outlive it. Exit status 0 is success; otherwise
the result's detail holds the last lines the process wrote (stderr first), a few hundred
characters at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mrwbus.agent.execution import clip
from mrwbus.agent.handlers import Handler, HandlerResult
from mrwbus.config.model import HandlerConfig
from mrwbus.messages import Outcome, RecoveryCommand

SHELL = "/bin/sh"
DETAIL_CHARS = 400
"""How much of a handler's output its result's detail keeps."""
DETAIL_LINES = 5
KEPT_OUTPUT_BYTES = 8192
"""How much of each stream is kept while the process runs: chatty handlers cost no memory."""
KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL to a handler's process group on timeout."""


def command_environment(command: RecoveryCommand) -> dict[str, str]:
    """The MRWBUS_* variables a handler sees; an absent fact is an empty string."""
    facts = {
        "COMMAND_ID": command.id,
        "FAULT_ID": command.fault_id,
        "MONITOR": command.monitor,
        "SERVER": command.server,
        "ACTION": command.action.value,
        "STEP": command.step.value if command.step else None,
        "GROUP": command.group,
        "RESOURCE": command.resource,
        "FROM_SERVER": command.from_server,
        "TO_SERVER": command.to_server,
        "FINAL_ACTION": command.final_action.value if command.final_action else None,
        "SCRIPT": command.script,
        "BEFORE_SCRIPT": command.before_script,
        "CATEGORY": command.category.value if command.category else None,
        "DEVICE": command.device,
        "MESSAGE": command.message,
    }
    return {f"MRWBUS_{name}": value or "" for name, value in facts.items()}


HIDDEN_VARIABLES = frozenset({"MRWBUS_AMQP_URL"})


class ShellHandler:
    """Runs one configured command line for a command: `ShellHandler.from_config(config)`."""

    def __init__(self, run: str, timeout: float, *, kill_grace: float = KILL_GRACE) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.run = run
        self.timeout = timeout
        self.kill_grace = kill_grace

    @classmethod
    def from_config(cls, config: HandlerConfig) -> ShellHandler:
        return cls(config.run, config.timeout.total_seconds())

    async def __call__(self, command: RecoveryCommand) -> HandlerResult:
        return await run_shell(
            self.run, command_environment(command), self.timeout, kill_grace=self.kill_grace
        )

    def __repr__(self) -> str:
        return f"ShellHandler({self.run!r}, timeout={self.timeout:g})"


class CommandScriptHandler:
    """Runs the command line the command itself carries: its `script` or `before_script`.

    The reference agent uses it when no handler is configured for `script` or
    `before_script`: the cluster configuration names the script (`recovery.script`,
    `recovery.before_script`), and the command carries that name, so the agent runs it, behind
    `NamedScriptsOnly`.
    """

    def __init__(self, field: str, timeout: float, *, kill_grace: float = KILL_GRACE) -> None:
        if field not in ("script", "before_script"):
            raise ValueError("field must be script or before_script")
        self.field = field
        self.timeout = timeout
        self.kill_grace = kill_grace

    async def __call__(self, command: RecoveryCommand) -> HandlerResult:
        line = getattr(command, self.field)
        if not line:
            return HandlerResult(Outcome.REFUSED, f"the command carries no {self.field} to run")
        return await run_shell(
            line, command_environment(command), self.timeout, kill_grace=self.kill_grace
        )

    def __repr__(self) -> str:
        return f"CommandScriptHandler({self.field!r}, timeout={self.timeout:g})"


class NamedScriptsOnly:
    """Refuses a `script` or `before_script` that the agent's own configuration does not name
    for this server, whatever handler would run it: a message on the bus cannot make an agent
    run a command line of its choosing."""

    def __init__(self, inner: Handler, field: str, allowed: frozenset[str]) -> None:
        self.inner = inner
        self.field = field
        self.allowed = allowed

    async def __call__(self, command: RecoveryCommand) -> HandlerResult | Outcome | None:
        line = getattr(command, self.field)
        if line and line not in self.allowed:
            return HandlerResult(
                Outcome.REFUSED,
                f"{self.field} {line!r} is not named by any monitor of this server in the configuration",
            )
        return await self.inner(command)

    def __repr__(self) -> str:
        return f"NamedScriptsOnly({self.inner!r})"


async def run_shell(
    line: str,
    variables: Mapping[str, str],
    timeout: float,
    *,
    kill_grace: float = KILL_GRACE,
) -> HandlerResult:
    """Run `line` with `/bin/sh -c` and the variables added to this process's environment."""
    ran = await run_program([SHELL, "-c", line], variables, timeout, kill_grace=kill_grace)
    if ran.status is None:
        detail = f"did not finish within {timeout:g} s; its process group was killed"
        return HandlerResult(Outcome.TIMED_OUT, _with_output(detail, ran.output))
    if ran.status == 0:
        return HandlerResult.succeeded(_last_lines(ran.output))
    detail = f"killed by signal {-ran.status}" if ran.status < 0 else f"exit status {ran.status}"
    return HandlerResult.failed(_with_output(detail, ran.output))


@dataclass(frozen=True)
class ProgramRun:
    """How a program ended: its exit status (negative: the signal; None: it timed out and its
    process group was killed), and its last words (stderr if it wrote any, else stdout)."""

    status: int | None
    output: str

    def last_lines(self) -> str:
        return _last_lines(self.output)


async def run_program(
    argv: Sequence[str],
    variables: Mapping[str, str],
    timeout: float,
    *,
    kill_grace: float = KILL_GRACE,
    stdin: bytes | None = None,
) -> ProgramRun:
    """Run `argv` with the variables added to this process's environment, in a process group
    of its own that is killed on timeout (and on cancellation); `stdin` is written to it (a
    fence agent's settings, its BMC password among them: never in argv or the environment)."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # The agent's broker URL carries its password: a handler has no business seeing it.
        env={**{k: v for k, v in os.environ.items() if k not in HIDDEN_VARIABLES}, **variables},
        start_new_session=True,  # its own process group, killed as one
    )
    assert process.stdout is not None and process.stderr is not None
    if stdin is not None:
        assert process.stdin is not None
        process.stdin.write(stdin)
        process.stdin.close()  # not drained: a program that reads nothing must not block us
    stdout = asyncio.create_task(_tail(process.stdout))
    stderr = asyncio.create_task(_tail(process.stderr))
    timed_out = False
    try:
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            timed_out = True
            await _kill_group(process, kill_grace)
    except BaseException:
        # Cancelled (the agent stops and its grace ran out): leave nothing behind.
        await _kill_group(process, 0)
        stdout.cancel()
        stderr.cancel()
        raise
    output = await _output(stdout, stderr)
    return ProgramRun(None if timed_out else process.returncode, output)


async def _kill_group(process: asyncio.subprocess.Process, grace: float) -> None:
    if grace > 0:
        _signal_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), grace)
    # Also after the shell left: its children in the group may still run.
    _signal_group(process.pid, signal.SIGKILL)
    await process.wait()


def _signal_group(group: int, number: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, number)


async def _tail(stream: asyncio.StreamReader) -> bytes:
    kept: deque[bytes] = deque()
    size = 0
    while chunk := await stream.read(4096):
        kept.append(chunk)
        size += len(chunk)
        while size - len(kept[0]) >= KEPT_OUTPUT_BYTES:
            size -= len(kept.popleft())
    return b"".join(kept)[-KEPT_OUTPUT_BYTES:]


async def _output(stdout: asyncio.Task[bytes], stderr: asyncio.Task[bytes]) -> str:
    """The process's last words: stderr if it wrote any, else stdout."""
    # A child that left the process group may still hold the pipes open: do not wait for it.
    done, pending = await asyncio.wait({stdout, stderr}, timeout=1.0)
    for task in pending:
        task.cancel()
    err = stderr.result() if stderr in done else b""
    out = stdout.result() if stdout in done else b""
    chosen = err if err.strip() else out
    return chosen.decode("utf-8", errors="replace")


def _last_lines(output: str) -> str:
    lines = [line.rstrip() for line in output.strip().splitlines() if line.strip()]
    return clip("\n".join(lines[-DETAIL_LINES:]), DETAIL_CHARS)


def _with_output(detail: str, output: str) -> str:
    last = _last_lines(output)
    return f"{detail}: {last}" if last else detail
