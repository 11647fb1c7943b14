"""The metric names the service really exports, found by rendering a `Service`'s `/metrics`
(active, with the bus read and every counter family present), never from a hand-kept list."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from mrwbus.config.model import ClusterConfig
from mrwbus.config.settings import ServiceSettings
from mrwbus.messages.bus import BusReport, QueueDepth
from mrwbus.service.service import Service
from mrwbus.web.prometheus import exposition

_TYPE = re.compile(r"^# TYPE (\S+) (\S+)$")
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def exported_metric_names(config: ClusterConfig) -> set[str]:
    service = Service(config, ServiceSettings(amqp_url="amqp://guest:guest@127.0.0.1/"))
    service.health.role = "active"  # the cluster's families come from the active replica only
    service.queues.latest = BusReport(
        read_at=datetime.now(UTC),
        queues=[
            QueueDepth(
                queue=f"mrwbus.{role}",
                role=role,
                ready=0,
                unacked=0,
                consumers=1,
                oldest_age_seconds=0.0,
            )
            for role in ("faults", "results", "control", "dead")
        ]
        + [
            QueueDepth(
                queue="mrwbus.agent.x",
                role="agent",
                server="x",
                ready=0,
                unacked=0,
                consumers=1,
                oldest_age_seconds=0.0,
            )
        ],
        dead_letters=0,
        source="management",
    )
    body, _ = exposition(
        service.counters, service.health, service.metrics, service.status_report(), None
    )
    names: set[str] = set()
    for line in body.decode().splitlines():
        if match := _TYPE.match(line):
            name, kind = match.groups()
            names.add(name)
            names.update(name + suffix for suffix in _SUFFIXES.get(kind, ()))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


METRIC = re.compile(r"\b(mrwbus_[a-zA-Z0-9_]+)")


def metrics_in(promql: str) -> set[str]:
    return set(METRIC.findall(promql))
