"""The relay's spool: every fault is on disk (fsync'd) before it is sent, until it is confirmed.

A file of JSON lines, appended to:
  {"add": {...fault...}, "level": ["nic/eth0", false]}   a fault to send (and the level it reports)
  {"done": "<fault id>"}                                  the broker confirmed it
  {"levels": {"nic/eth0": false}}                          the levels reported so far (compaction)
Replaying the lines gives the faults still to send, in the order they were added, and the level
last reported per device, so a restarted relay neither sends a fault twice under a new id nor
announces again a link that was already reported down. A line cut short by a crash is ignored:
it was never fsync'd, so its fault was never sent either. The file is rewritten (to a temporary
file, renamed) when it opens and whenever nothing is left to send, so it stays small.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mrwbus.messages import FaultNotification

log = logging.getLogger(__name__)


@dataclass
class SpoolState:
    pending: dict[str, FaultNotification] = field(default_factory=dict)
    """Fault id -> fault, in the order added (dicts keep it)."""
    levels: dict[str, bool] = field(default_factory=dict)
    """Device key -> the last level reported (True healthy)."""
    torn: int = 0
    """Lines that could not be read (a write cut short by a crash)."""

    def apply(self, record: dict[str, Any]) -> None:
        if "levels" in record:
            self.levels.update({str(k): bool(v) for k, v in record["levels"].items()})
        if "add" in record:
            fault = FaultNotification.model_validate(record["add"])
            self.pending.setdefault(fault.id, fault)
            if record.get("level") is not None:
                key, healthy = record["level"]
                self.levels[str(key)] = bool(healthy)
        if "done" in record:
            self.pending.pop(str(record["done"]), None)

    def records(self) -> list[dict[str, Any]]:
        """The lines that rebuild this state, for a compacted file."""
        lines: list[dict[str, Any]] = [{"levels": self.levels}] if self.levels else []
        lines += [{"add": fault.model_dump(mode="json")} for fault in self.pending.values()]
        return lines


def replay(lines: Iterable[str]) -> SpoolState:
    """The state a spool's lines describe."""
    state = SpoolState()
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
            state.apply(record)
        except (ValueError, TypeError, KeyError, ValidationError):
            state.torn += 1
    return state


def encode(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")


class Spool:
    """One server's spool file. Not shared: one relay per server, one writer."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            text = ""
        self.state = replay(text.splitlines())
        if self.state.torn:
            log.warning("spool %s: %d unreadable line(s) skipped", self.path, self.state.torn)
        self._file = self._rewrite()

    @property
    def pending(self) -> list[FaultNotification]:
        return list(self.state.pending.values())

    @property
    def levels(self) -> dict[str, bool]:
        return dict(self.state.levels)

    def add(self, fault: FaultNotification, level: tuple[str, bool] | None = None) -> bool:
        """Keep a fault until it is confirmed; False when it is already kept (same id)."""
        if fault.id in self.state.pending:
            return False
        record: dict[str, Any] = {"add": fault.model_dump(mode="json")}
        if level is not None:
            record["level"] = list(level)
        self._append(record)
        self.state.apply(record)
        return True

    def done(self, fault_id: str) -> None:
        """The broker confirmed it: it is never sent again."""
        self._append({"done": fault_id})
        self.state.pending.pop(fault_id, None)
        if not self.state.pending:
            self._file.close()
            self._file = self._rewrite()

    def close(self) -> None:
        self._file.close()

    def _append(self, record: dict[str, Any]) -> None:
        self._file.write(encode(record))
        self._file.flush()
        os.fsync(self._file.fileno())

    def _rewrite(self) -> Any:
        temporary = self.path.with_suffix(self.path.suffix + ".tmp")
        with temporary.open("wb") as out:
            out.writelines(encode(record) for record in self.state.records())
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself must survive a power loss
        finally:
            os.close(directory)
        return self.path.open("ab")
