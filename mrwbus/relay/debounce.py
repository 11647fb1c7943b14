"""Debouncing levels: a link that flaps for less than the debounce time is not a fault.

Pure: times are given, nothing is read or awaited. The daemon feeds every raw observation of a
device (healthy or not, and when) and asks for the transitions that are due; `next_due` says
when to ask again. Each device has a *reported* level, the last one announced (or remembered
across a restart, see `spool.py`); a different level becomes a transition once it has held for
`delay` seconds without the device going back in between. The transition carries the time the
change was first seen, so the fault id made from it is the same however late it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Transition:
    """A device's level changed and held: healthy=False is a fault, True a recovery."""

    key: str
    healthy: bool
    since: float
    """When the change was first seen (seconds since the epoch)."""
    detail: str
    """What the source said when the change was first seen, for the fault's message."""


@dataclass
class _Pending:
    healthy: bool
    since: float
    detail: str


@dataclass
class Debouncer:
    delay: float
    reported: dict[str, bool] = field(default_factory=dict)
    """The last level announced per device; a device not in it is taken as healthy."""
    _pending: dict[str, _Pending] = field(default_factory=dict)

    def observe(self, key: str, healthy: bool, at: float, detail: str = "") -> None:
        """Record what a source sees now."""
        if healthy == self.reported.get(key, True):
            self._pending.pop(key, None)  # back before the delay: a flap, not a transition
            return
        pending = self._pending.get(key)
        if pending is None or pending.healthy != healthy:
            self._pending[key] = _Pending(healthy, at, detail)

    def due(self, now: float) -> list[Transition]:
        """The transitions that held for `delay` by `now`, oldest first; they become reported."""
        ready = sorted(
            (p.since, key) for key, p in self._pending.items() if now - p.since >= self.delay
        )
        transitions = []
        for _, key in ready:
            pending = self._pending.pop(key)
            self.reported[key] = pending.healthy
            transitions.append(Transition(key, pending.healthy, pending.since, pending.detail))
        return transitions

    def next_due(self) -> float | None:
        """When the earliest pending change becomes due, or None when nothing is pending."""
        if not self._pending:
            return None
        return min(p.since for p in self._pending.values()) + self.delay
