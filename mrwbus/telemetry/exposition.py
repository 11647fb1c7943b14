"""The service's own measurements, and the metric families that show them to Prometheus.

`Counters` (`mrwbus.bus.health`) count what flows through the bus; `Metrics` here holds what a plain
count cannot: the fault-to-command latency histogram. The exposition half builds
prometheus_client families from values (`counter`, `gauge`, `labelled`, `histogram`) and
renders them with prometheus_client (`render`: text format 0.0.4, or OpenMetrics when the
scraper asks for it), so it is unit tested without a server.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.process_collector import ProcessCollector

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

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series: a scrape shows what the rules and tests read

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""What `/metrics` answers with unless the scraper asks for OpenMetrics: text format 0.0.4."""


class Metrics:
    """What the service measures besides `Counters`; the service calls these as things happen."""

    def __init__(self, latency_bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.fault_to_command = Histogram(
            "mrwbus_fault_to_command_seconds",
            "Seconds from a fault's delivery to the broker's confirm of the first commands it caused.",
            buckets=latency_bounds,
            registry=None,  # rendered with the rest of a scrape's families (`histogram`)
        )

    def observe_fault_to_command(self, seconds: float) -> None:
        """From a fault's delivery to the broker's confirm of the first commands it caused."""
        self.fault_to_command.observe(seconds)


# --- the exposition, by prometheus_client -------------------------------------------------

MetricType = Literal["counter", "gauge"]
MetricFamily = Metric


def counter(name: str, help: str, value: float) -> Metric:
    return CounterMetricFamily(name, help, value=value)


def gauge(name: str, help: str, value: float) -> Metric:
    return GaugeMetricFamily(name, help, value=value)


def labelled(
    name: str,
    type: MetricType,
    help: str,
    label: str,
    values: Mapping[str, float],
    known: Sequence[str] = (),
) -> Metric:
    """One sample per label value; `known` values appear at 0 before they are first counted,
    so `rate()` and alerts see the series from the start."""
    family: CounterMetricFamily | GaugeMetricFamily = (
        CounterMetricFamily(name, help, labels=[label])
        if type == "counter"
        else GaugeMetricFamily(name, help, labels=[label])
    )
    for key in sorted({*known, *values}):
        family.add_metric([key], values.get(key, 0))
    return family


def multi_labelled(
    name: str,
    type: MetricType,
    help: str,
    labels: Sequence[str],
    values: Mapping[Any, float],
) -> Metric:
    """One sample per tuple of label values, in the order of `labels`."""
    family: CounterMetricFamily | GaugeMetricFamily = (
        CounterMetricFamily(name, help, labels=list(labels))
        if type == "counter"
        else GaugeMetricFamily(name, help, labels=list(labels))
    )
    for key in sorted(values):
        family.add_metric(list(key), values[key])
    return family


def histogram(observed: Histogram) -> Metric:
    """prometheus_client's own histogram as one family, for a scrape's registry."""
    [family] = observed.collect()
    return family


class _Families:
    """A collector that yields the families it is given, for one scrape."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def registry_of(families: Iterable[Metric], *, process: bool = False) -> CollectorRegistry:
    """A registry for one scrape; with `process`, also the process' CPU, memory and files."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    if process:
        ProcessCollector(registry=registry)
    return registry


def render_text(families: Iterable[Metric]) -> str:
    """Families in Prometheus' text format 0.0.4, each with its HELP and TYPE lines."""
    return generate_latest(registry_of(families)).decode("utf-8")


def render(families: Iterable[Metric], accept: str | None) -> tuple[bytes, str]:
    """The body and content type a scraper asked for (`Accept`: OpenMetrics or text 0.0.4),
    with the process metrics."""
    encoder: Callable[[CollectorRegistry], bytes]
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry_of(families, process=True)), content_type


def _bound(value: float) -> str:
    """A bucket's `le` label as Prometheus' own clients write it: `0.5`, `1.0`, `+Inf`."""
    return "+Inf" if math.isinf(value) else repr(float(value))
