"""`/healthz`: ok only when connected and consuming, or connected as a standby replica."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import pytest

from mrwbus.bus.health import Health
from mrwbus.web.healthz import assess


@dataclass
class ReplicaHealth(Health):
    """The service's health once replicas exist: the same, plus a role."""

    role: object = "active"


class Role(Enum):
    ACTIVE = "active"
    STANDBY = "standby"


@pytest.mark.parametrize(
    ("health", "status", "http_status"),
    [
        (Health(connected=True, consuming=True), "ok", 200),
        (Health(connected=True, consuming=False), "degraded", 503),
        (Health(connected=False, consuming=False), "degraded", 503),
        (ReplicaHealth(connected=True, consuming=True, role="active"), "ok", 200),
        (ReplicaHealth(connected=True, consuming=False, role="active"), "degraded", 503),
        (ReplicaHealth(connected=True, consuming=False, role="standby"), "ok", 200),
        (ReplicaHealth(connected=True, consuming=False, role=Role.STANDBY), "ok", 200),
        # A standby that cannot reach the broker could not take over.
        (ReplicaHealth(connected=False, consuming=False, role="standby"), "degraded", 503),
    ],
)
def test_status(health: Health, status: str, http_status: int) -> None:
    report = assess(health)
    assert (report.status, report.http_status) == (status, http_status)


def test_json_body() -> None:
    health = Health(connected=False, consuming=False, outages=2, last_error="connection refused")
    assert assess(health).as_json() == {
        "status": "degraded",
        "broker_connected": False,
        "consuming": False,
        "role": "unknown",
        "outages": 2,
        "last_error": "connection refused",
        "node": None,
        "stuck": [],
    }


def test_the_node_is_shown() -> None:
    health = Health(connected=True, consuming=True, role="active", node="10.0.0.2:5672")
    assert assess(health).as_json()["node"] == "10.0.0.2:5672"


def test_a_consumer_that_holds_a_message_and_finishes_none_fails_the_check() -> None:
    health = Health(connected=True, consuming=True, stuck_after=60)
    health.began("mrwbus.faults", 1, now=1000)
    assert assess(health, now=1059).status == "ok"
    stuck = assess(health, now=1061)
    assert (stuck.status, stuck.stuck) == ("degraded", ("mrwbus.faults",))
    # Progress beside the held message (others finished) is no stall, yet.
    health.began("mrwbus.faults", 2, now=1050)
    health.ended("mrwbus.faults", 2, now=1055)
    assert assess(health, now=1100).status == "ok"
    assert assess(health, now=1116).status == "degraded"
    health.ended("mrwbus.faults", 1, now=1120)
    assert assess(health, now=5000).status == "ok"  # nothing in hand: idle is healthy


@pytest.mark.parametrize(
    ("role", "shown"),
    [("active", "active"), (Role.STANDBY, "standby"), ("leader", "unknown"), (None, "unknown")],
)
def test_role(role: object, shown: str) -> None:
    assert assess(ReplicaHealth(connected=True, consuming=True, role=role)).role == shown
