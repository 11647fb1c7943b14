"""`/metrics`: the service's counters, health and measurements, and the bus's queues as the
service last read them (`bus.queues`), as Prometheus families.

Pure: it reads the values it is given and returns families (rendered by prometheus_client),
so the tests need no server.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily

from mrwbus.bus.health import Counters, Health
from mrwbus.messages import Action, Category, Outcome, StatusReport
from mrwbus.messages.bus import BusReport, QueueDepth
from mrwbus.telemetry.exposition import (
    MetricFamily,
    Metrics,
    counter,
    gauge,
    histogram,
    labelled,
    render,
    render_text,
)

QUEUE_LABELS = ("queue", "role", "server")


def _queue_gauge(name: str, help: str, rows: Iterable[tuple[QueueDepth, float]]) -> MetricFamily:
    """One sample per queue, labelled by its name, its role and (agent queues) its server."""
    family = GaugeMetricFamily(name, help, labels=QUEUE_LABELS)
    for queue, value in rows:
        family.add_metric([queue.queue, queue.role, queue.server or ""], value)
    return family


def bus_families(bus: BusReport | None) -> list[MetricFamily]:
    """The queues as the service last read them; none before the first reading (or on a
    standby replica), so a scraper sees the series vanish rather than stale figures."""
    if bus is None:
        return []
    queues = bus.queues
    return [
        _queue_gauge(
            "mrwbus_queue_messages_ready",
            "Messages waiting in the queue.",
            ((q, q.ready) for q in queues),
        ),
        _queue_gauge(
            "mrwbus_queue_messages_unacked",
            "Messages delivered and not yet acknowledged (management API only).",
            ((q, q.unacked) for q in queues if q.unacked is not None),
        ),
        _queue_gauge(
            "mrwbus_queue_consumers",
            "Consumers attached to the queue.",
            ((q, q.consumers) for q in queues),
        ),
        _queue_gauge(
            "mrwbus_queue_oldest_message_age_seconds",
            "Age of the oldest message, where the broker says it.",
            ((q, q.oldest_age_seconds) for q in queues if q.oldest_age_seconds is not None),
        ),
        _queue_gauge(
            "mrwbus_agent_queue_stalled",
            "1 while an agent queue grows and nobody consumes it.",
            ((q, q.stalled) for q in queues if q.role == "agent"),
        ),
        gauge("mrwbus_dead_letters", "Messages waiting in mrwbus.dead.", bus.dead_letters),
    ]


def service_families(
    counters: Counters, health: Health, metrics: Metrics, report: StatusReport
) -> list[MetricFamily]:
    in_error = sum(1 for row in report.monitors if row.status == "Error")
    return [
        labelled(
            "mrwbus_faults_received_total",
            "counter",
            "Fault notifications received and valid, by category.",
            "category",
            counters.faults_by_category,
            known=[category.value for category in Category],
        ),
        counter(
            "mrwbus_faults_matched_total",
            "Faults that matched at least one monitor resource.",
            counters.matched,
        ),
        counter(
            "mrwbus_faults_unmatched_total",
            "Faults that matched no monitor resource.",
            counters.unmatched,
        ),
        counter(
            "mrwbus_dead_lettered_total",
            "Messages that broke the wire contract and were dead-lettered.",
            counters.dead_lettered,
        ),
        labelled(
            "mrwbus_commands_total",
            "counter",
            "Recovery commands published and confirmed by the broker, by action.",
            "action",
            counters.commands_by_action,
            known=[action.value for action in Action],
        ),
        labelled(
            "mrwbus_results_total",
            "counter",
            "Command results reported by node agents, by outcome.",
            "outcome",
            counters.results_by_outcome,
            known=[outcome.value for outcome in Outcome],
        ),
        gauge(
            "mrwbus_monitors_in_error",
            "Monitor resources in Error, counted once per server.",
            in_error,
        ),
        histogram(
            "mrwbus_fault_to_command_seconds",
            "Seconds from a fault's delivery to the broker's confirm of the first commands it caused.",
            metrics.fault_to_command,
        ),
        gauge(
            "mrwbus_broker_connected",
            "1 while the service has a session with the broker.",
            health.connected,
        ),
        gauge(
            "mrwbus_consuming",
            "1 while the service consumes the faults queue.",
            health.consuming,
        ),
        counter(
            "mrwbus_broker_outages_total",
            "Broker sessions lost since the service started.",
            health.outages,
        ),
    ]


def report_families(
    counters: Counters, health: Health, metrics: Metrics, report: StatusReport
) -> list[MetricFamily]:
    """Everything `/metrics` shows: the service's own figures and the bus as last read."""
    return [*service_families(counters, health, metrics, report), *bus_families(report.bus)]


def render_metrics(
    counters: Counters, health: Health, metrics: Metrics, report: StatusReport
) -> str:
    return render_text(report_families(counters, health, metrics, report))


def exposition(
    counters: Counters, health: Health, metrics: Metrics, report: StatusReport, accept: str | None
) -> tuple[bytes, str]:
    """`/metrics`' body and content type: OpenMetrics if the scraper's `Accept` asks for it,
    else text format 0.0.4; with the process metrics."""
    return render(report_families(counters, health, metrics, report), accept)
