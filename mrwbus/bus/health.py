"""What a process tells about itself: its session's health and the service's counters.

Plain data, importable without the service or aio-pika, so `web/` (and tests) read them
without pulling in the bus. `bus.session` keeps a `Health` up to date for whoever runs a
session: the service, an agent, the relay.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mrwbus.messages import RecoveryCommand

STUCK_AFTER = 60.0
"""Seconds a consumer may hold a message without finishing any before `/healthz` fails: far
beyond any honest handling (a fault is decided in milliseconds, a journal write in less than a
publish timeout), short enough for an orchestrator to notice a stalled replica."""


@dataclass
class ConsumerProgress:
    """The messages one consumer holds now, and when it last finished one."""

    handling: dict[int, float] = field(default_factory=dict)
    """A token per message in hand -> when its handling began (monotonic seconds)."""
    last_done: float | None = None


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
    consumers: dict[str, ConsumerProgress] = field(default_factory=dict)
    """By queue name, kept by `bus.session.Session.consume`."""
    stuck_after: float = STUCK_AFTER

    def began(self, queue: str, token: int, now: float) -> None:
        self.consumers.setdefault(queue, ConsumerProgress()).handling[token] = now

    def ended(self, queue: str, token: int, now: float) -> None:
        progress = self.consumers.setdefault(queue, ConsumerProgress())
        progress.handling.pop(token, None)
        progress.last_done = now

    def stuck(self, now: float) -> list[str]:
        """The queues whose consumer has held a message longer than `stuck_after` seconds and
        finished none meanwhile: a message it cannot get past, a handler that hangs."""
        found = []
        for queue, progress in sorted(self.consumers.items()):
            if not progress.handling:
                continue
            oldest = min(progress.handling.values())
            moved = max(oldest, progress.last_done or oldest)
            if now - moved > self.stuck_after:
                found.append(queue)
        return found


@dataclass
class Counters:
    """What flowed through the service, as `/metrics` shows it."""

    faults_by_category: Counter[str] = field(default_factory=Counter)
    matched: int = 0
    unmatched: int = 0
    dead_lettered: int = 0
    commands_by_action: Counter[str] = field(default_factory=Counter)
    results_by_outcome: Counter[str] = field(default_factory=Counter)
    commands_sent: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """By (server, monitor, action): what the dashboard and the final-action alert read."""
    command_outcomes: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    """By (server, monitor, action, outcome); monitor and action `unknown` for a result of a
    command this replica no longer remembers."""
    journal_failures: int = 0
    """Times the journal could not be written and the replica stepped down."""
    fence_failures: Counter[str] = field(default_factory=Counter)
    """By server: rounds in which every peer failed to fence it."""
    alerts_posted: int = 0
    """Alerts (firing or resolved) Alertmanager accepted from the forwarder (mrwbus.alerting)."""
    alertmanager_failures: int = 0
    """Posts to Alertmanager that failed and were retried, or were refused."""

    def command_sent(self, server: str, monitor: str, action: str) -> None:
        self.commands_by_action[action] += 1
        self.commands_sent[(server, monitor, action)] += 1

    def result(self, server: str, outcome: str, command: RecoveryCommand | None) -> None:
        """A result of `command` (None: a command this replica does not remember)."""
        self.results_by_outcome[outcome] += 1
        monitor, action = (command.monitor, command.action.value) if command else ("unknown",) * 2
        self.command_outcomes[(server, monitor, action, outcome)] += 1
