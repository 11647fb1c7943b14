"""Kernel-log lines against configured patterns. Pure: text in, matches out.

`/dev/kmsg` gives one record per read, `PRIORITY,SEQUENCE,MICROSECONDS,FLAGS;TEXT` followed by
continuation lines that start with a blank (`SUBSYSTEM=...`, `DEVICE=...`); `kmsg_text` keeps
the text. A followed file (syslog, journal export) gives lines as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from mrwbus.config.relay import PatternConfig
from mrwbus.messages import Category

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
