"""`mrwbus relay --http HOST:PORT`: `/healthz` and `/metrics` of a running relay.

Healthy means every source and every task of the relay is running, the relay is connected
to the broker, and the broker took the last fault offered (it connects at start, so a wrong password or a missing topology shows at once,
not only when a fault waits). Read-only, no authentication: it binds to 127.0.0.1 unless told
otherwise.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from mrwbus.errors import RelayError
from mrwbus.relay.daemon import Relay
from mrwbus.telemetry.endpoints import serve_endpoints
from mrwbus.telemetry.exposition import MetricFamily, counter, gauge, labelled


def health(relay: Relay) -> tuple[int, dict[str, Any]]:
    status = relay.delivery.status
    waiting = len(relay.spool.pending)
    connected = relay.delivery.connected
    tasks_up = all(relay.supervision.up.values())
    ok = all(relay.running.values()) and tasks_up and connected and not status.failing
    body = {
        "status": "ok" if ok else "degraded",
        "server": relay.settings.server,
        "sources": dict(relay.running),
        "broker_connected": connected,
        "spooled": waiting,
        "confirmed": status.confirmed,
        "last_error": relay.health.last_error,
    }
    return (200 if ok else 503), body


def families(relay: Relay) -> list[MetricFamily]:
    names = [source.name for source in relay.sources]
    counters = relay.counters
    return [
        labelled(
            "mrwbus_relay_faults_seen_total",
            "counter",
            "Faults and recovery notices made, by source.",
            "source",
            counters.seen,
            known=names,
        ),
        counter(
            "mrwbus_relay_faults_spooled_total",
            "Faults written to the spool.",
            counters.spooled,
        ),
        gauge(
            "mrwbus_relay_spooled",
            "Faults in the spool that the broker has not confirmed yet.",
            len(relay.spool.pending),
        ),
        counter(
            "mrwbus_relay_faults_confirmed_total",
            "Faults the broker confirmed.",
            relay.delivery.status.confirmed,
        ),
        gauge(
            "mrwbus_relay_broker_connected",
            "1 while the relay has a connection to the broker.",
            relay.delivery.connected,
        ),
        labelled(
            "mrwbus_relay_source_failures_total",
            "counter",
            "Times a source failed and was started again, by source.",
            "source",
            relay.source_failures,
            known=names,
        ),
        labelled(
            "mrwbus_relay_task_failures_total",
            "counter",
            "Times a task of the relay (a source, the debounce, the delivery) failed and was "
            "started again, by task.",
            "task",
            relay.supervision.failures,
            known=[*names, "debounce", "delivery"],
        ),
        counter(
            "mrwbus_relay_delivery_failures_total",
            "Attempts to send the spool that the broker did not take (away, returned, refused).",
            relay.delivery.status.attempts_failed,
        ),
        counter(
            "mrwbus_relay_broker_outages_total",
            "Broker sessions lost or refused since the relay started.",
            relay.health.outages,
        ),
    ]


def split_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise RelayError(f"--http {text!r} is not HOST:PORT (for example 127.0.0.1:9464)")
    return host.strip("[]") or "127.0.0.1", int(port)


async def serve_http(relay: Relay, address: str) -> web.AppRunner:
    """Start serving; the caller cleans the returned runner up."""
    host, port = split_address(address)
    try:
        return await serve_endpoints(host, port, lambda: health(relay), lambda: families(relay))
    except OSError as exc:
        raise RelayError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
