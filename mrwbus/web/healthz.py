"""`/healthz`: whether this replica does its job, for load balancers and orchestrators.

Healthy means connected to the broker and either consuming faults or standing by as a replica
that is ready to take over, and no consumer stuck: none holds a message longer than
`Health.stuck_after` while finishing none (a message it cannot get past, a hung handler). A replica that cannot reach the broker could not take over, so it
is degraded whatever its role.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from mrwbus.bus.health import Health

Role = Literal["active", "standby", "unknown"]
ROLES: tuple[Role, ...] = ("active", "standby", "unknown")


@dataclass(frozen=True)
class HealthReport:
    status: Literal["ok", "degraded"]
    broker_connected: bool
    consuming: bool
    role: Role
    outages: int
    last_error: str | None
    node: str | None = None
    """The broker node (host:port) the session is connected to."""
    stuck: tuple[str, ...] = ()
    """Queues whose consumer holds a message and makes no progress (`Health.stuck`)."""

    @property
    def http_status(self) -> int:
        return 200 if self.status == "ok" else 503

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "broker_connected": self.broker_connected,
            "consuming": self.consuming,
            "role": self.role,
            "outages": self.outages,
            "last_error": self.last_error,
            "node": self.node,
            "stuck": list(self.stuck),
        }


def role_of(health: Health) -> Role:
    """The replica's role: active, standby, or unknown while it starts."""
    found = getattr(health, "role", "unknown")
    role = str(getattr(found, "value", found))  # a plain str, or an enum of the three
    for known in ROLES:
        if role == known:
            return known
    return "unknown"


def assess(health: Health, now: float | None = None) -> HealthReport:
    role = role_of(health)
    stuck = tuple(health.stuck(time.monotonic() if now is None else now))
    ok = health.connected and (health.consuming or role == "standby") and not stuck
    return HealthReport(
        status="ok" if ok else "degraded",
        broker_connected=health.connected,
        consuming=health.consuming,
        role=role,
        outages=health.outages,
        last_error=health.last_error,
        node=health.node,
        stuck=stuck,
    )
