"""Which monitors a fault concerns: an index by category and server, built once from the config.

Matching one fault costs one dictionary lookup plus a scan of the monitors watching that
category on that server, so it does not grow with the size of the cluster.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from mrwbus.config import ClusterConfig
from mrwbus.messages import Category


@dataclass(frozen=True)
class _Watch:
    monitor: str
    keyword: str  # empty: any device of the category


class MonitorIndex:
    """Monitors by (category, server), each with the keyword it watches on that server."""

    def __init__(self, config: ClusterConfig) -> None:
        watches: dict[tuple[Category, str], list[_Watch]] = defaultdict(list)
        for name, monitor in config.monitors.items():
            for server in config.monitored_servers(name):
                watches[(monitor.category, server)].append(
                    _Watch(name, config.keyword_for(name, server))
                )
        self._watches = dict(watches)

    def match(self, server: str, category: Category, device: str) -> list[str]:
        """The monitors that a fault of `category` on `device` of `server` puts in Error."""
        return [
            watch.monitor
            for watch in self._watches.get((category, server), ())
            if not watch.keyword or watch.keyword == device
        ]
