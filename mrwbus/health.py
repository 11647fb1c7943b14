"""What a process tells about itself: its session's health and the service's counters.

Plain data, importable without the service or aio-pika, so `web/` (and tests) read them
without pulling in the bus. `bus.session` keeps a `Health` up to date for whoever runs a
session: the service, an agent, the relay.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Health:
    """A broker session's state, kept current by `bus.session.SessionRunner`."""

    connected: bool = False
    consuming: bool = False
    role: str = "starting"
    """active (holds the leader lock and consumes), standby (waits for the lock), or starting;
    a process without replicas (an agent) stays "starting" until it consumes, then "active"."""
    outages: int = 0
    """Sessions lost since the process started (broker gone, channel closed, consumer
    cancelled)."""
    last_error: str | None = None
    node: str | None = None
    """The broker node (host:port) the session is connected to, while it is."""


@dataclass
class Counters:
    """What flowed through the service, as `/metrics` shows it."""

    faults_by_category: Counter[str] = field(default_factory=Counter)
    matched: int = 0
    unmatched: int = 0
    dead_lettered: int = 0
    commands_by_action: Counter[str] = field(default_factory=Counter)
    results_by_outcome: Counter[str] = field(default_factory=Counter)
