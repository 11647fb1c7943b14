"""`exec` sources: a program that prints one JSON object per line, restarted if it dies.

Each line is `{"category": "NIC", "device": "eth0", "message": "...", "state": "error"}`
(`message` and `state` optional; state `error` or `recovered`). A line that is not that is
logged and skipped; so is a line longer than `MAX_LINE` bytes (the program keeps running and
its next line counts). When the program exits it is started again after a back-off that doubles
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
from collections.abc import Iterator
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mrwbus.config.relay import Duration
from mrwbus.errors import ConfigIssue
from mrwbus.messages import Category, Keyword, Name, describe_validation_error
from mrwbus.relay.sources import Emit, Notice, Source, SourceKind

log = logging.getLogger(__name__)


MAX_LINE = 64 * 1024
"""Bytes: a longer line is skipped (a fault's message is cut at 4096 characters anyway)."""
READ_CHUNK = 64 * 1024


class LineSplitter:
    """Bytes as they come -> complete lines of at most `limit` bytes; a longer line is dropped
    whole and counted in `skipped` (with its length), and the lines after it still come.
    Pure: asyncio's own reader gives up on the whole stream at its limit instead."""

    def __init__(self, limit: int = MAX_LINE) -> None:
        self.limit = limit
        self.skipped: list[int] = []
        """The length of each line dropped, in bytes (at least `limit + 1`)."""
        self._partial = bytearray()
        self._dropping = 0
        """Bytes of an over-long line dropped so far (0: not in one)."""

    def feed(self, data: bytes) -> list[bytes]:
        lines: list[bytes] = []
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            piece = data[start:] if end < 0 else data[start:end]
            start = len(data) if end < 0 else end + 1
            if self._dropping:
                self._dropping += len(piece)
            elif len(self._partial) + len(piece) > self.limit:
                self._dropping = len(self._partial) + len(piece)
                self._partial.clear()
            else:
                self._partial += piece
            if end >= 0:
                if self._dropping:
                    self.skipped.append(self._dropping)
                    self._dropping = 0
                else:
                    lines.append(bytes(self._partial))
                    self._partial.clear()
        return lines


class ExecSourceConfig(BaseModel):
    """`relay.exec.<name>`: a program printing JSON lines (category, device, message, state);
    restarted if it dies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run: str = Field(min_length=1)
    restart_min: Duration = timedelta(seconds=1)
    restart_max: Duration = timedelta(seconds=60)


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

    def _line(self, raw: bytes, emit: Emit) -> None:
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            return
        try:
            line = parse_program_line(text)
        except ValueError as exc:
            log.warning("%s printed a line that is not a fault: %s", self.name, exc)
            return
        emit(
            Notice(
                self.name, line.category, line.device, line.state, line.message, time.time(), text
            )
        )

    async def _run_once(self, emit: Emit) -> int | None:
        self.starts += 1
        process = await asyncio.create_subprocess_shell(
            self.command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        assert process.stdout is not None
        splitter = LineSplitter()
        try:
            while chunk := await process.stdout.read(READ_CHUNK):
                for raw in splitter.feed(chunk):
                    self._line(raw, emit)
                while splitter.skipped:
                    log.warning(
                        "%s printed a line of %d bytes, longer than %d: skipped",
                        self.name,
                        splitter.skipped.pop(0),
                        MAX_LINE,
                    )
            return await process.wait()
        finally:
            if process.returncode is None:
                # The whole session: a shell's children must not outlive the relay's wish.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()


def _build(configs: dict[str, ExecSourceConfig]) -> list[Source]:
    return [ProgramSource(name, config) for name, config in configs.items()]


def _check(configs: dict[str, ExecSourceConfig], where: str) -> Iterator[ConfigIssue]:
    for name, config in configs.items():
        if config.restart_min > config.restart_max:
            yield ConfigIssue(f"{where}.{name}.restart_min", "must not be longer than restart_max")


KIND = SourceKind("exec", dict[Name, ExecSourceConfig], _build, empty={}, check=_check)
