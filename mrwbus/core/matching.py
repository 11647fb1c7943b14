"""Which monitors a fault concerns: an index by category, server and device, built once.

Matching one fault costs two dictionary lookups (the monitors watching that exact device, and
those watching any device of the category on that server), so it does not grow with the size
of the cluster.
"""

from __future__ import annotations

from collections import defaultdict

from mrwbus.config.model import ClusterConfig
from mrwbus.messages import Category

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
