"""The real `mrwbus` command as separate processes: the service, node agents and relays."""

from __future__ import annotations

import asyncio
import os
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
        return "\n".join(f"--- {p.name} ---\n{p.output()[-3000:]}" for p in self.started)
