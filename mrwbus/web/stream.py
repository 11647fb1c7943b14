"""What one viewer's server-sent event stream says, message by message.

The first message (`snapshot`) carries the status, the health and the recent events, taken
after the viewer subscribed, so nothing falls between the page's first picture and the
stream. Then each event arrives with the status as it is after it (`update`); status or health
that change without an event (an agent's report, a lost broker) are sent on the next tick.
Pure: it reads through the two functions it is given and returns bytes to write.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from mrwbus.messages import Event, StatusReport
from mrwbus.web.healthz import HealthReport

KEEPALIVE = b": keepalive\n\n"
"""A comment line: keeps proxies from closing an idle stream, and finds viewers who left."""


def sse_message(kind: str, data: dict[str, Any]) -> bytes:
    """One server-sent event: `event: <kind>` and its JSON on one `data:` line."""
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def event_json(event: Event) -> dict[str, Any]:
    """An event as an `EventBatch` on `mrwbus.events` carries it (absent fields left out)."""
    return event.model_dump(mode="json", exclude_none=True)


def status_json(report: StatusReport) -> dict[str, Any]:
    """The status as `mrwbus status --json` prints it."""
    return report.model_dump(mode="json")


def _without_read_time(status: dict[str, Any] | None) -> dict[str, Any] | None:
    """The status minus when the queues were read: a reading that found nothing new is no
    change worth sending (the service reads them every 2 s)."""
    if status is None or not status.get("bus"):
        return status
    return {**status, "bus": {**status["bus"], "read_at": None}}


class StatusStream:
    def __init__(
        self, read_status: Callable[[], StatusReport], read_health: Callable[[], HealthReport]
    ) -> None:
        self._read_status = read_status
        self._read_health = read_health
        self._status: dict[str, Any] | None = None
        self._health: dict[str, Any] | None = None

    def opening(self, recent: Iterable[Event]) -> bytes:
        self._status = status_json(self._read_status())
        self._health = self._read_health().as_json()
        return sse_message(
            "snapshot",
            {
                "status": self._status,
                "health": self._health,
                "events": [event_json(event) for event in recent],
            },
        )

    def on_event(self, event: Event) -> bytes:
        self._status = status_json(self._read_status())
        return sse_message("update", {"event": event_json(event), "status": self._status})

    def on_tick(self) -> bytes | None:
        """The status and health if either changed since last sent, else None."""
        status = status_json(self._read_status())
        health = self._read_health().as_json()
        if (
            _without_read_time(status) == _without_read_time(self._status)
            and health == self._health
        ):
            return None
        self._status, self._health = status, health
        return sse_message("status", {"status": status, "health": health})
