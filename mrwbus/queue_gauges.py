"""The bus's queues as gauge values for `/metrics`: names, help, labels and numbers, no format.

Kept apart from the exposition (`web/prometheus.py`) so that a move to another metrics library
only rewires; the values stay here.
"""

from __future__ import annotations

from dataclasses import dataclass

from mrwbus.bus_messages import BusReport


@dataclass(frozen=True)
class GaugeValues:
    name: str
    help: str
    samples: list[tuple[dict[str, str], float]]


def queue_gauges(bus: BusReport | None) -> list[GaugeValues]:
    """One gauge per figure, one sample per queue; empty before the first reading."""
    if bus is None:
        return []

    def labels(queue: str, role: str, server: str | None) -> dict[str, str]:
        return {"queue": queue, "role": role, "server": server or ""}

    ready = [(labels(q.queue, q.role, q.server), float(q.ready)) for q in bus.queues]
    consumers = [(labels(q.queue, q.role, q.server), float(q.consumers)) for q in bus.queues]
    unacked = [
        (labels(q.queue, q.role, q.server), float(q.unacked))
        for q in bus.queues
        if q.unacked is not None
    ]
    ages = [
        (labels(q.queue, q.role, q.server), q.oldest_age_seconds)
        for q in bus.queues
        if q.oldest_age_seconds is not None
    ]
    stalled = [
        (labels(q.queue, q.role, q.server), float(q.stalled))
        for q in bus.queues
        if q.role == "agent"
    ]
    return [
        GaugeValues("mrwbus_queue_messages_ready", "Messages waiting in the queue.", ready),
        GaugeValues(
            "mrwbus_queue_messages_unacked",
            "Messages delivered and not yet acknowledged (management API only).",
            unacked,
        ),
        GaugeValues("mrwbus_queue_consumers", "Consumers attached to the queue.", consumers),
        GaugeValues(
            "mrwbus_queue_oldest_message_age_seconds",
            "Age of the oldest message, where the broker says it.",
            ages,
        ),
        GaugeValues(
            "mrwbus_agent_queue_stalled",
            "1 while an agent queue grows and nobody consumes it.",
            stalled,
        ),
        GaugeValues(
            "mrwbus_dead_letters",
            "Messages waiting in mrwbus.dead.",
            [({}, float(bus.dead_letters))],
        ),
    ]
