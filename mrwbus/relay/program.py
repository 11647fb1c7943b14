"""`exec` sources: a program that prints one JSON object per line, restarted if it dies.

Each line is `{"category": "NIC", "device": "eth0", "message": "...", "state": "error"}`
(`message` and `state` optional; state `error` or `recovered`). A line that is not that is
logged and skipped. When the program exits it is started again after a back-off that doubles
from `restart_min` to `restart_max`, and starts again from `restart_min` once the program has
run for `restart_max` without dying.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from mrwbus.config.relay import ExecSourceConfig
from mrwbus.messages import Category, Keyword, describe_validation_error
from mrwbus.relay.sources import Emit, Notice

log = logging.getLogger(__name__)


class ProgramLine(BaseModel):
    """One line a program prints."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category: Category
    device: Keyword
    message: str = ""
    state: Literal["error", "recovered"] = "error"


def parse_program_line(text: str) -> ProgramLine:
    """A printed line as a `ProgramLine`, or ValueError saying what is wrong with it."""
    try:
        return ProgramLine.model_validate_json(text)
    except ValidationError as exc:
        raise ValueError(describe_validation_error(exc)) from None


def next_backoff(current: float, ran_for: float, low: float, high: float) -> float:
    """The wait before the next start: back to `low` after a long run, else doubled up to `high`."""
    if ran_for >= high:
        return low
    return min(max(current * 2, low), high)


class ProgramSource:
    def __init__(self, name: str, config: ExecSourceConfig) -> None:
        self.name = f"exec.{name}"
        self.command = config.run
        self.low = config.restart_min.total_seconds()
        self.high = config.restart_max.total_seconds()
        self.starts = 0

    def describe(self) -> str:
        return f"JSON lines printed by {self.command!r}"

    async def snapshot(self) -> list[str]:
        return [f"{self.name}: runs {self.command!r} (not started by --once)"]

    async def run(self, emit: Emit) -> None:
        wait = 0.0
        while True:
            started = time.monotonic()
            status = await self._run_once(emit)
            wait = next_backoff(wait, time.monotonic() - started, self.low, self.high)
            log.warning(
                "%s exited with status %s; starting it again in %gs", self.name, status, wait
            )
            await asyncio.sleep(wait)

    async def _run_once(self, emit: Emit) -> int | None:
        self.starts += 1
        process = await asyncio.create_subprocess_shell(
            self.command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        assert process.stdout is not None
        try:
            async for raw in process.stdout:
                text = raw.decode("utf-8", errors="replace").strip()
                if not text:
                    continue
                try:
                    line = parse_program_line(text)
                except ValueError as exc:
                    log.warning("%s printed a line that is not a fault: %s", self.name, exc)
                    continue
                emit(
                    Notice(
                        self.name,
                        line.category,
                        line.device,
                        line.state,
                        line.message,
                        time.time(),
                        text,
                    )
                )
            return await process.wait()
        finally:
            if process.returncode is None:
                # The whole session: a shell's children must not outlive the relay's wish.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
