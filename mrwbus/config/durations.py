"""Durations as an administrator writes them: `90`, `90s`, `10m`, `2h`, `1d`."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> timedelta:
    """`90`, `90s`, `10m`, `2h` or `1d` -> a timedelta; bare numbers are seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 90, 90s, 10m or 2h")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration such as 90, 90s, 10m or 2h")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    if math.isnan(seconds):
        raise ValueError(f"{value!r} is not a duration such as 90, 90s, 10m or 2h")
    if seconds <= 0:
        raise ValueError("must be longer than zero")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{value!r} is too long a duration") from None


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
