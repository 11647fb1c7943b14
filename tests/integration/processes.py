"""The real `mrwbus` command as separate processes: the service, node agents and relays."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Process:
    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    log: Path
    process: asyncio.subprocess.Process | None = None

    async def start(self) -> Process:
        handle = self.log.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mrwbus",
            *self.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=handle,
            stderr=handle,
        )
        handle.close()
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def kill(self) -> None:
        """SIGKILL: no goodbye, nothing finished, nothing acknowledged."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM, the graceful stop; returns the exit status."""
        assert self.process is not None
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                await self.kill()
        assert self.process.returncode is not None
        return self.process.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Processes:
    """Starts `mrwbus` processes with one configuration, in one working folder."""

    config: Path
    cwd: Path
    amqp_url: str
    started: list[Process] = field(default_factory=list)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["MRWBUS_AMQP_URL"] = self.amqp_url
        env["PYTHONUNBUFFERED"] = "1"
        return env

    async def service(self, name: str = "service") -> Process:
        return await self._start(name, ["run", "--config", str(self.config), "--http", "off"])

    async def agent(self, server: str) -> Process:
        return await self._start(
            f"agent-{server}", ["agent", "--server", server, "--config", str(self.config)]
        )

    async def relay(self, server: str) -> Process:
        return await self._start(
            f"relay-{server}", ["relay", "--server", server, "--config", str(self.config)]
        )

    async def _start(self, name: str, argv: list[str]) -> Process:
        process = Process(name, argv, self.cwd, self._env(), self.cwd / f"{name}.log")
        self.started.append(process)
        return await process.start()

    async def stop_all(self) -> None:
        for process in reversed(self.started):
            if process.running:
                await process.terminate()

    def logs(self) -> str:
        """What a failed test prints: each process's notable lines from its whole run (a
        tail alone lost how a long test got there), then the tail."""
        return "\n".join(
            f"--- {p.name}: notable lines ---\n{notable(p.output())}\n"
            f"--- {p.name}: the last lines ---\n{p.output()[-3000:]}"
            for p in self.started
        )


NOTABLE_LINES = 80


def notable(output: str) -> str:
    """The lines of a log at warning or above, and those saying a replica's role changed; a
    run of lines alike (the same message but for its numbers) is kept once, with its count."""
    kept: list[tuple[str, str, int]] = []  # (line, its shape, repeats)
    for line in output.splitlines():
        try:
            entry = json.loads(line)
            level, message = entry["level"], f"{entry['logger']}: {entry['message']}"
        except (ValueError, KeyError, TypeError):
            level, message = "warning", line  # not the service's JSON: a traceback, say
        if level in ("debug", "info") and not ROLE_CHANGE.search(message):
            continue
        shape = re.sub(r"\d+", "N", message)
        if kept and kept[-1][1] == shape:
            kept[-1] = (kept[-1][0], shape, kept[-1][2] + 1)
        else:
            kept.append((line, shape, 1))
    lines = [line + (f"  [and {n - 1} more alike]" if n > 1 else "") for line, _, n in kept]
    if len(lines) > NOTABLE_LINES:
        half = NOTABLE_LINES // 2
        lines = [*lines[:half], f"[{len(lines) - NOTABLE_LINES} lines left out]", *lines[-half:]]
    return "\n".join(lines)


ROLE_CHANGE = re.compile(r"active: consuming|state recovered|standby|leader|snapshot")
