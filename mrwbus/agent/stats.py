"""What an agent measures for `mrwbus agent --http` (`/metrics`): commands run by outcome,
handler durations, and the last report sent. Plain data, kept by the agent as things happen."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from prometheus_client import Histogram

HANDLER_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
"""Upper bounds in seconds: a probe takes milliseconds, a database restart minutes."""


@dataclass
class AgentStats:
    commands_by_outcome: Counter[str] = field(default_factory=Counter)
    durations: Histogram = field(
        default_factory=lambda: Histogram(
            "mrwbus_agent_handler_seconds",
            "How long commands ran, per handler.",
            labelnames=("handler",),
            buckets=HANDLER_BUCKETS,
            registry=None,
        )
    )
    """Per handler name (restart, failover.start, ...): how long its commands ran."""
    reports: int = 0
    last_report_at: float | None = None
    """Unix time of the last report the broker confirmed."""

    def command_done(self, handler: str, outcome: str, seconds: float) -> None:
        self.commands_by_outcome[outcome] += 1
        self.durations.labels(handler).observe(seconds)

    def reported(self) -> None:
        self.reports += 1
        self.last_report_at = time.time()
