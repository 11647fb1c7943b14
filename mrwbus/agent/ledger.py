"""The agent's journal: which commands it started and finished, so none runs twice.

One JSON object per line in `<state_dir>/<server>/journal.jsonl`, each written and fsync'd
before the agent goes on:

    {"started": "<command id>", "at": "..."}                 before a command runs
    {"finished": "<command id>", "result": {...},            after it ran; the result as sent,
     "active_groups": ["failover1"]}                         and the groups active afterwards
    {"groups": ["failover1"], "at": "..."}                   the groups, set by the agent's author

A command found finished is not run again: its stored result is sent again. A command found
started but not finished was interrupted (the agent was killed while it ran): it is not run
again either, since it may have done half its work; it is reported failed. The file is
rewritten on open (a torn last line from a crash is dropped) and whenever it has grown to twice
`keep` lines, keeping the last `keep` commands. A lock file keeps a second agent for the same
server and directory out.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from mrwbus.errors import JournalLocked
from mrwbus.messages import CommandResult, utc_now

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal.jsonl"
LOCK_FILE = "agent.lock"
KEEP = 10_000
"""Commands remembered; a redelivery older than this many commands is very unlikely."""


@dataclass(frozen=True)
class JournalEntry:
    command_id: str
    result: CommandResult | None
    """The result sent; None when the command was started and never finished."""

    @property
    def interrupted(self) -> bool:
        return self.result is None


class CommandLedger:
    """Open with `CommandLedger.open(directory)`; every method may be called from a worker thread."""

    def __init__(self, directory: Path, keep: int, lock: IO[str]) -> None:
        self.directory = directory
        self.path = directory / JOURNAL_FILE
        self.keep = keep
        self._lock_file = lock
        self._mutex = threading.Lock()
        self._entries: OrderedDict[str, CommandResult | None] = OrderedDict()
        self._groups: frozenset[str] | None = None
        self._lines = 0
        self._file: IO[str] | None = None

    @classmethod
    def open(cls, directory: str | Path, *, keep: int = KEEP) -> CommandLedger:
        """Lock the directory, read the journal, compact it, and open it for appending."""
        if keep < 1:
            raise ValueError("keep must be at least 1")
        where = Path(directory)
        where.mkdir(parents=True, exist_ok=True)
        lock = open(where / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 - held until close
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise JournalLocked(
                f"another agent already uses {where}; one agent per server and state directory"
            ) from None
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        journal = cls(where, keep, lock)
        try:
            journal._load()
            journal._compact()
        except BaseException:
            journal.close()
            raise
        return journal

    # --- reading ------------------------------------------------------------------------

    def lookup(self, command_id: str) -> JournalEntry | None:
        with self._mutex:
            if command_id not in self._entries:
                return None
            return JournalEntry(command_id, self._entries[command_id])

    @property
    def active_groups(self) -> frozenset[str] | None:
        """The groups last known active on this server; None if the journal never said."""
        return self._groups

    def __len__(self) -> int:
        return len(self._entries)

    # --- writing ------------------------------------------------------------------------

    def start(self, command_id: str) -> None:
        self._append(
            {"started": command_id, "at": utc_now().isoformat()},
            lambda: self._remember(command_id, None),
        )

    def finish(self, result: CommandResult, active_groups: Iterable[str]) -> None:
        groups = frozenset(active_groups)

        def remember() -> None:
            self._remember(result.command_id, result)
            self._groups = groups

        self._append(
            {
                "finished": result.command_id,
                "result": result.model_dump(mode="json", exclude_none=True),
                "active_groups": sorted(groups),
            },
            remember,
        )

    def record_groups(self, active_groups: Iterable[str]) -> None:
        groups = frozenset(active_groups)

        def remember() -> None:
            self._groups = groups

        self._append({"groups": sorted(groups), "at": utc_now().isoformat()}, remember)

    def close(self) -> None:
        with self._mutex:
            if self._file is not None:
                self._file.close()
                self._file = None
            if not self._lock_file.closed:
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
                self._lock_file.close()

    # --- inside -------------------------------------------------------------------------

    def _remember(self, command_id: str, result: CommandResult | None) -> None:
        self._entries[command_id] = result
        self._entries.move_to_end(command_id)
        while len(self._entries) > self.keep:
            self._entries.popitem(last=False)

    def _append(self, record: dict[str, Any], remember: Callable[[], None]) -> None:
        """Write a line, then take it into memory, both before any compaction: a compaction
        rewrites the file from memory, so it must already hold this line's news."""
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._mutex:
            if self._file is None:
                raise ValueError("the journal is closed")
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())
            self._lines += 1
            remember()
            grown = self._lines > 2 * self.keep
        if grown:
            self._compact()

    def _load(self) -> None:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8", errors="replace") as file:
            for number, line in enumerate(file, start=1):
                if line.strip():
                    self._load_line(line, number)

    def _load_line(self, line: str, number: int) -> None:
        try:
            record = json.loads(line)
            if "started" in record:
                self._remember(str(record["started"]), None)
            elif "finished" in record:
                result = CommandResult.model_validate(record["result"])
                self._remember(result.command_id, result)
                if "active_groups" in record:
                    self._groups = frozenset(record["active_groups"])
            elif "groups" in record:
                self._groups = frozenset(record["groups"])
            else:
                raise ValueError("not a journal record")
        except (ValueError, TypeError, KeyError, ValidationError) as exc:
            # A torn last line after a crash, most likely: the rest still counts.
            log.warning("%s line %d skipped: %s", self.path, number, exc)

    def _compact(self) -> None:
        """Rewrite the journal with the commands kept and the groups, atomically."""
        with self._mutex:
            if self._file is not None:
                self._file.close()
                self._file = None
            lines = []
            for command_id, result in self._entries.items():
                if result is None:
                    record: dict[str, Any] = {"started": command_id}
                else:
                    record = {
                        "finished": command_id,
                        "result": result.model_dump(mode="json", exclude_none=True),
                    }
                lines.append(json.dumps(record, separators=(",", ":")) + "\n")
            if self._groups is not None:
                lines.append(json.dumps({"groups": sorted(self._groups)}) + "\n")
            temporary = self.path.with_suffix(".tmp")
            with temporary.open("w", encoding="utf-8") as file:
                file.writelines(lines)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
            _fsync_directory(self.directory)
            self._lines = len(lines)
            self._file = self.path.open("a", encoding="utf-8")


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
