"""The service's own measurements, and the Prometheus text format that shows them.

`Counters` in `service.py` count what flows through the bus; `Metrics` here holds what a plain
count cannot: the fault-to-command latency histogram. The
exposition half (`MetricFamily`, `render_text`) is pure: values in, text format 0.0.4 out, so
it is unit tested without a server and needs no client library.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

LATENCY_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Upper bounds in seconds; a local broker confirms in milliseconds, a sick one in seconds."""

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""What `/metrics` answers with: Prometheus' text exposition format."""


@dataclass
class Histogram:
    """Observations counted into fixed buckets, as a Prometheus histogram shows them."""

    bounds: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(init=False)
    """Per bucket, not cumulative; the last entry counts what exceeds every bound (+Inf)."""
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if list(self.bounds) != sorted(set(self.bounds)):
            raise ValueError("histogram bounds must be strictly increasing")
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        # `le` is inclusive: a value equal to a bound belongs to that bound's bucket.
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or below it), ending with (+Inf, count)."""
        running = 0
        out = []
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


class Metrics:
    """What the service measures besides `Counters`; the service calls these as things happen."""

    def __init__(self, latency_bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.fault_to_command = Histogram(latency_bounds)

    def observe_fault_to_command(self, seconds: float) -> None:
        """From a fault's delivery to the broker's confirm of the first commands it caused."""
        self.fault_to_command.observe(seconds)


# --- the text exposition format ----------------------------------------------------------------

MetricType = Literal["counter", "gauge", "histogram"]
Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Sample:
    value: float
    labels: Labels = ()
    suffix: str = ""
    """Appended to the family's name: `_bucket`, `_sum`, `_count` for histograms."""


@dataclass(frozen=True)
class MetricFamily:
    name: str
    type: MetricType
    help: str
    samples: tuple[Sample, ...]


def counter(name: str, help: str, value: float) -> MetricFamily:
    return MetricFamily(name, "counter", help, (Sample(value),))


def gauge(name: str, help: str, value: float) -> MetricFamily:
    return MetricFamily(name, "gauge", help, (Sample(value),))


def labelled(
    name: str,
    type: MetricType,
    help: str,
    label: str,
    values: Mapping[str, float],
    known: Sequence[str] = (),
) -> MetricFamily:
    """One sample per label value; `known` values appear at 0 before they are first counted,
    so `rate()` and alerts see the series from the start."""
    keys = sorted({*known, *values})
    samples = tuple(Sample(values.get(key, 0), ((label, key),)) for key in keys)
    return MetricFamily(name, type, help, samples)


def histogram(name: str, help: str, observed: Histogram) -> MetricFamily:
    samples = [
        Sample(count, (("le", _format_value(bound)),), "_bucket")
        for bound, count in observed.cumulative()
    ]
    samples.append(Sample(observed.total, (), "_sum"))
    samples.append(Sample(observed.count, (), "_count"))
    return MetricFamily(name, "histogram", help, tuple(samples))


def render_text(families: Iterable[MetricFamily]) -> str:
    """Families in Prometheus' text format 0.0.4, each with its HELP and TYPE lines."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for sample in family.samples:
            labels = ",".join(f'{key}="{_escape_label(value)}"' for key, value in sample.labels)
            selector = f"{{{labels}}}" if labels else ""
            lines.append(f"{family.name}{sample.suffix}{selector} {_format_value(sample.value)}")
    return "\n".join(lines) + "\n"


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")
