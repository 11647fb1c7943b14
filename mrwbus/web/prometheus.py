"""`/metrics`: the service's counters, health and measurements as Prometheus families.

Pure: it reads the values it is given and returns text, so the tests need no server.
"""

from __future__ import annotations

from mrwbus.messages import Action, Category, Outcome, StatusReport
from mrwbus.metrics import (
    MetricFamily,
    Metrics,
    Sample,
    counter,
    gauge,
    histogram,
    labelled,
    render_text,
)
from mrwbus.queue_gauges import queue_gauges
from mrwbus.service import Counters, Health


def bus_families(report: StatusReport) -> list[MetricFamily]:
    """The queue gauges (`queue_gauges`) as families: only the wiring lives here."""
    return [
        MetricFamily(
            gauge.name,
            "gauge",
            gauge.help,
            tuple(Sample(value, tuple(sorted(labels.items()))) for labels, value in gauge.samples),
        )
        for gauge in queue_gauges(report.bus)
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


def render_metrics(
    counters: Counters, health: Health, metrics: Metrics, report: StatusReport
) -> str:
    return render_text(
        [*service_families(counters, health, metrics, report), *bus_families(report)]
    )
