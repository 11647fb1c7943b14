"""Which monitors a fault concerns: an index by category, server and device, built once.

Matching one fault costs two dictionary lookups (the monitors watching that exact device, and
those watching any device of the category on that server), so it does not grow with the size
of the cluster.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from mrwbus.config.model import ClusterConfig
from mrwbus.core import events
from mrwbus.messages import Category, Event, FaultNotification

_ANY_DEVICE = ""


class MonitorIndex:
    """Monitors by (category, server, keyword); an empty keyword watches any device."""

    def __init__(self, config: ClusterConfig) -> None:
        watches: dict[tuple[Category, str, str], list[str]] = defaultdict(list)
        for name, monitor in config.monitors.items():
            for server in config.monitored_servers(name):
                watches[(monitor.category, server, config.keyword_for(name, server))].append(name)
        self._watches = dict(watches)
        self._position = {name: index for index, name in enumerate(config.monitors)}

    def match(self, server: str, category: Category, device: str) -> list[str]:
        """The monitors that a fault of `category` on `device` of `server` puts in Error, in
        configuration order."""
        exact = self._watches.get((category, server, device), []) if device != _ANY_DEVICE else []
        anything = self._watches.get((category, server, _ANY_DEVICE), [])
        if exact and anything:
            return sorted([*exact, *anything], key=self._position.__getitem__)
        return list(exact or anything)


@dataclass(frozen=True)
class FaultRoute:
    """What becomes of a fault before any monitor decides: dead-lettered (`dead_letter` says
    why), matched by `monitors`, or matched by none (`unmatched`, event MRW-110)."""

    dead_letter: str | None
    monitors: list[str]
    unmatched: Event | None = None


def route_fault(
    config: ClusterConfig, index: MonitorIndex, fault: FaultNotification, now: datetime
) -> FaultRoute:
    """The service's first step with every fault, and `simulate`'s."""
    if fault.server not in config.servers:
        # Kept, not dropped: once the server is configured, `mrwbus dead replay`.
        return FaultRoute(f"server {fault.server!r} is not in the configuration", [])
    monitors = index.match(fault.server, fault.category, fault.device)
    if monitors:
        return FaultRoute(None, monitors)
    return FaultRoute(None, [], unmatched(fault, now))


def unmatched(fault: FaultNotification, now: datetime) -> Event:
    """MRW-110: a fault no monitor watches."""
    return events.FAULT_UNMATCHED.make(
        at=now,
        cause=fault.id,
        server=fault.server,
        fault_id=fault.id,
        category=fault.category.value,
        device=fault.device,
    )
