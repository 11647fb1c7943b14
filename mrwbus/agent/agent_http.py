"""`mrwbus agent --http HOST:PORT` (off by default): `/healthz` and `/metrics` of an agent.

Healthy means the agent consumes its server's command queue (its broker session's `Health`,
the same the service's page shows). `/metrics`: commands run by outcome, handler durations,
the reports sent and when the last one was, and the session's state. Read-only, no
authentication: bind it to 127.0.0.1 unless a scraper elsewhere needs it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from mrwbus.agent.runtime import Agent
from mrwbus.errors import AgentError
from mrwbus.messages import Outcome
from mrwbus.telemetry.endpoints import serve_endpoints
from mrwbus.telemetry.exposition import MetricFamily, counter, gauge, histogram, labelled


def health(agent: Agent) -> tuple[int, dict[str, Any]]:
    state = agent.health
    ok = state.consuming
    body = {
        "status": "ok" if ok else "degraded",
        "server": agent.server,
        "connected": state.connected,
        "consuming": state.consuming,
        "outages": state.outages,
        "last_error": state.last_error,
        "active_groups": sorted(agent.active_groups),
        "last_report_at": agent.stats.last_report_at,
    }
    return (200 if ok else 503), body


def families(agent: Agent) -> list[MetricFamily]:
    stats = agent.stats
    found: list[MetricFamily] = [
        labelled(
            "mrwbus_agent_commands_total",
            "counter",
            "Commands the agent ran, by outcome (redeliveries answered from the journal excluded).",
            "outcome",
            stats.commands_by_outcome,
            known=[outcome.value for outcome in Outcome],
        ),
        counter("mrwbus_agent_reports_total", "Reports sent (heartbeats included).", stats.reports),
        gauge(
            "mrwbus_agent_last_report_timestamp_seconds",
            "Unix time of the last report sent; 0 before the first.",
            stats.last_report_at or 0,
        ),
        gauge(
            "mrwbus_agent_consuming",
            "1 while the agent consumes its command queue.",
            agent.health.consuming,
        ),
        counter(
            "mrwbus_agent_outages_total", "Broker sessions lost and renewed.", agent.health.outages
        ),
    ]
    found.append(
        labelled(
            "mrwbus_agent_task_failures_total",
            "counter",
            "Times one of the agent's own tasks (probes, reports) failed and was started again.",
            "task",
            agent.supervision.failures,
            known=("probes", "reports"),
        )
    )
    found.append(histogram(stats.durations))
    return found


async def serve_agent_http(agent: Agent, host: str, port: int) -> web.AppRunner:
    """Start serving; the caller cleans the returned runner up."""
    try:
        return await serve_endpoints(host, port, lambda: health(agent), lambda: families(agent))
    except OSError as exc:
        raise AgentError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
