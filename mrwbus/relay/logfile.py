"""Kernel-log lines as faults: `/dev/kmsg`, or a file that is appended to (syslog, a test's log).

Only lines written after the relay started count: what the log held before was reported (or
not) by the relay that ran then. `/dev/kmsg` is read one record per read, without polling; a
plain file is read every `FILE_POLL` seconds, and read again from its start when it was
rotated (another inode) or truncated.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import stat
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from mrwbus.errors import ConfigIssue
from mrwbus.messages import Name
from mrwbus.relay.patterns import CompiledPattern, PatternConfig, kmsg_text, match_line
from mrwbus.relay.sources import Emit, Notice, Source, SourceKind

log = logging.getLogger(__name__)

FILE_POLL = 0.2
"""Seconds between reads of a followed file."""


class LogSourceConfig(BaseModel):
    """`relay.logs.<name>`: lines of `/dev/kmsg` or of a file that is appended to, matched
    against patterns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = "/dev/kmsg"
    patterns: list[PatternConfig] = Field(min_length=1)


class LogSource:
    def __init__(self, name: str, config: LogSourceConfig) -> None:
        self.name = f"logs.{name}"
        self.path = Path(config.path)
        self.patterns = [CompiledPattern.of(pattern) for pattern in config.patterns]

    def describe(self) -> str:
        names = ", ".join(pattern.name for pattern in self.patterns)
        return f"lines of {self.path} matching {names}"

    async def snapshot(self) -> list[str]:
        state = "readable" if os.access(self.path, os.R_OK) else "NOT READABLE (yet)"
        return [f"{self.name}: {self.path} {state}; patterns: {len(self.patterns)}"]

    async def run(self, emit: Emit) -> None:
        async for line, unique in self._lines():
            for match in match_line(self.patterns, line):
                emit(
                    Notice(
                        self.name,
                        match.category,
                        match.device,
                        "recovered" if match.state == "recovered" else "error",
                        f"{match.pattern}: {line}"[:4096],
                        time.time(),
                        unique,
                    )
                )

    def _lines(self) -> AsyncIterator[tuple[str, str]]:
        if _is_char_device(self.path):
            return _follow_kmsg(self.path)
        return _follow_file(self.path)


def _is_char_device(path: Path) -> bool:
    try:
        return stat.S_ISCHR(path.stat().st_mode)
    except OSError:
        return False


async def _follow_kmsg(path: Path) -> AsyncIterator[tuple[str, str]]:
    """(text, sequence number) of every record the kernel logs from now on."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    try:
        os.lseek(fd, 0, os.SEEK_END)
        loop.add_reader(fd, readable.set)
        while True:
            await readable.wait()
            readable.clear()
            while True:
                try:
                    record = os.read(fd, 8192).decode("utf-8", errors="replace")
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno == errno.EPIPE:  # records overwritten before we read them
                        log.warning("%s: kernel log records were lost (ring buffer wrapped)", path)
                        continue
                    raise
                sequence = record.split(",", 2)[1] if record.count(",") >= 2 else ""
                yield kmsg_text(record), sequence
    finally:
        with contextlib.suppress(Exception):
            loop.remove_reader(fd)
        os.close(fd)


async def _follow_file(path: Path) -> AsyncIterator[tuple[str, str]]:
    """(line, line) of every complete line appended from now on."""
    handle = None
    inode = None
    partial = b""
    try:
        with contextlib.suppress(OSError):
            handle = path.open("rb")
            handle.seek(0, os.SEEK_END)
            inode = os.fstat(handle.fileno()).st_ino
        while True:
            if handle is not None:
                chunk = handle.read()
                if chunk:
                    partial += chunk
                    *lines, partial = partial.split(b"\n")
                    for raw in lines:
                        line = raw.decode("utf-8", errors="replace").rstrip("\r")
                        yield line, line
            await asyncio.sleep(FILE_POLL)
            try:
                now = path.stat()
            except OSError:
                continue  # gone for the moment (rotation): keep reading what we have
            if handle is None or now.st_ino != inode or now.st_size < handle.tell():
                # A new file (rotated, or created after the start) or a truncated one: all of
                # its lines are new.
                if handle is not None:
                    handle.close()
                handle = path.open("rb")
                inode = os.fstat(handle.fileno()).st_ino
                partial = b""
    finally:
        if handle is not None:
            handle.close()


def _build(configs: dict[str, LogSourceConfig]) -> list[Source]:
    return [LogSource(name, config) for name, config in configs.items()]


def _check(configs: dict[str, LogSourceConfig], where: str) -> Iterator[ConfigIssue]:
    for name, config in configs.items():
        for index, pattern in enumerate(config.patterns):
            if pattern.device_group not in pattern.compiled().groupindex:
                yield ConfigIssue(
                    f"{where}.{name}.patterns.{index}.regex",
                    f"has no named group {pattern.device_group!r} for the device "
                    f"(write it as (?P<{pattern.device_group}>...))",
                )


KIND = SourceKind("logs", dict[Name, LogSourceConfig], _build, empty={}, check=_check)
