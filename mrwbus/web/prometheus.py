"""`/metrics`: the service's counters, health and measurements, and the bus's queues as the
service last read them (`bus.queues`), as Prometheus families.

Pure: it reads the values it is given and returns families (rendered by prometheus_client),
so the tests need no server.
"""

from __future__ import annotations

import time
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
    multi_labelled,
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
        histogram(metrics.fault_to_command),
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


def cluster_families(health: Health, report: StatusReport) -> list[MetricFamily]:
    """The cluster as this replica sees it, per monitor, group and server: only from the
    active replica (a standby's view is stale), so alerting rules need no role filter."""
    if health.role != "active":
        return []
    return [
        multi_labelled(
            "mrwbus_monitor_in_error",
            "gauge",
            "1 while the monitor is in Error on the server.",
            ("monitor", "server"),
            {(row.monitor, row.server): row.status == "Error" for row in report.monitors},
        ),
        labelled(
            "mrwbus_group_running",
            "gauge",
            "1 while the group runs on a server, 0 while it runs nowhere.",
            "group",
            {row.group: row.server is not None for row in report.groups},
        ),
        labelled(
            "mrwbus_server_alive",
            "gauge",
            "0 once the server's agent fell silent for service.heartbeat_timeout.",
            "server",
            {row.server: row.alive for row in report.servers},
        ),
        labelled(
            "mrwbus_servers_fenced",
            "gauge",
            "1 while the server is fenced or taken down, until its agent reports again.",
            "server",
            {row.server: row.down is not None for row in report.servers},
        ),
    ]


def operator_families(counters: Counters, health: Health) -> list[MetricFamily]:
    """What the alerting rules and the dashboard read besides the totals above."""
    return [
        gauge(
            "mrwbus_service_active",
            "1 while this replica holds the leader lock and decides; 0 on a standby.",
            health.role == "active",
        ),
        multi_labelled(
            "mrwbus_commands_sent_total",
            "counter",
            "Recovery commands confirmed by the broker, by server, monitor and action.",
            ("server", "monitor", "action"),
            counters.commands_sent,
        ),
        multi_labelled(
            "mrwbus_command_outcomes_total",
            "counter",
            "Command results reported by node agents, by server, monitor, action and outcome.",
            ("server", "monitor", "action", "outcome"),
            counters.command_outcomes,
        ),
        labelled(
            "mrwbus_fence_failures_total",
            "counter",
            "Rounds in which every peer failed to fence the server (MRW-1004).",
            "server",
            counters.fence_failures,
        ),
        counter(
            "mrwbus_journal_failures_total",
            "Times the journal could not be written and this replica stepped down.",
            counters.journal_failures,
        ),
        labelled(
            "mrwbus_consumer_stuck",
            "gauge",
            "1 while the queue's consumer holds a message and finishes none (as /healthz says).",
            "queue",
            dict.fromkeys(health.stuck(time.monotonic()), 1),
            known=sorted(health.consumers),
        ),
        counter(
            "mrwbus_alerts_posted_total",
            "Alerts (firing or resolved) Alertmanager accepted from the forwarder.",
            counters.alerts_posted,
        ),
        counter(
            "mrwbus_alertmanager_failures_total",
            "Posts to Alertmanager that failed (retried) or were refused (dead-lettered).",
            counters.alertmanager_failures,
        ),
    ]


def report_families(
    counters: Counters, health: Health, metrics: Metrics, report: StatusReport
) -> list[MetricFamily]:
    """Everything `/metrics` shows: the service's own figures and the bus as last read."""
    return [
        *service_families(counters, health, metrics, report),
        *operator_families(counters, health),
        *cluster_families(health, report),
        *bus_families(report.bus),
    ]


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
