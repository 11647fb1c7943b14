"""Kernel-log lines against configured patterns. Pure: text in, matches out; `PatternConfig` is a pattern as configured.

`/dev/kmsg` gives one record per read, `PRIORITY,SEQUENCE,MICROSECONDS,FLAGS;TEXT` followed by
continuation lines that start with a blank (`SUBSYSTEM=...`, `DEVICE=...`); `kmsg_text` keeps
the text. A followed file (syslog, journal export) gives lines as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from mrwbus.messages import Category, Name


class PatternConfig(BaseModel):
    """A regular expression over kernel-log lines; a match is a fault of `category`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    category: Category
    regex: str
    device_group: str = "device"
    """The named group of `regex` that holds the device."""
    device_prefix: str = ""
    """Put before the device found: qla2xxx logs the SCSI host number `3`, the HBA is `host3`."""
    state: Literal["error", "recovered"] = "error"

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"is not a valid regular expression: {exc}") from None
        return value

    def compiled(self) -> re.Pattern[str]:
        return re.compile(self.regex)


_KMSG_PREFIX = re.compile(r"^\d+,\d+,\d+,[^;]*;")


def kmsg_text(record: str) -> str:
    """The message text of a `/dev/kmsg` record; any other line is returned as it is."""
    first = record.split("\n", 1)[0]
    return _KMSG_PREFIX.sub("", first, count=1)


@dataclass(frozen=True)
class CompiledPattern:
    name: str
    category: Category
    regex: re.Pattern[str]
    device_group: str
    state: str
    device_prefix: str = ""

    @classmethod
    def of(cls, config: PatternConfig) -> CompiledPattern:
        return cls(
            config.name,
            config.category,
            config.compiled(),
            config.device_group,
            config.state,
            config.device_prefix,
        )


@dataclass(frozen=True)
class LineMatch:
    """A line matched a pattern: a fault (or recovery) of `category` on `device`."""

    pattern: str
    category: Category
    device: str
    state: str
    line: str


def match_line(patterns: Iterable[CompiledPattern], line: str) -> list[LineMatch]:
    """Every pattern the line matches, in configuration order; a line may name two devices."""
    found = []
    for pattern in patterns:
        hit = pattern.regex.search(line)
        if hit is None:
            continue
        device = hit.group(pattern.device_group)
        if not device:
            continue  # an optional group that did not take part names no device
        found.append(
            LineMatch(
                pattern.name, pattern.category, pattern.device_prefix + device, pattern.state, line
            )
        )
    return found
