"""What an agent's report teaches the service: the server is alive, and where groups run.

The report is the agent's word on its own server: with `probe` handlers, what the system says
runs there; without, what its journal remembers. Placement follows it (a failover in progress
owns its group until it is over); where that changes what the service believed, an event
(MRW-604) says so, and two servers claiming one group is an event too (MRW-603). Pure.
"""

from __future__ import annotations

from datetime import datetime

from mrwbus.config.model import ClusterConfig
from mrwbus.core import events
from mrwbus.core.placement import ClusterView
from mrwbus.messages import AgentReport, Event


def learn_from_report(
    config: ClusterConfig, view: ClusterView, report: AgentReport, now: datetime
) -> list[Event]:
    """Apply `report` to `view`; the events it causes."""
    found: list[Event] = []
    sent = min(now, report.sent_at)
    if report.server not in config.servers or now - sent > config.service.heartbeat_timeout:
        # Unknown, or a report that waited in the queue (an outage): it proves nothing now.
        return found
    down = view.down.get(report.server)
    if down is not None:
        if sent <= down.at:
            return found  # sent before it went down: it says nothing of the server now
        del view.down[report.server]  # it came back: a destination again
    if report.server not in view.alive:
        view.alive.add(report.server)
        found.append(events.SERVER_BACK.make(at=now, cause=report.id, server=report.server))
    known = frozenset(group for group in report.active_groups if group in config.groups)
    probed = frozenset(group for group in report.probed_groups if group in config.groups)
    conflicts, moved = view.apply_report(report.server, known, sent, probed)
    for group, before in moved.items():
        after = view.placement[group]
        found.append(
            events.REPORT_CONTRADICTS.make(
                at=now,
                cause=report.id,
                server=report.server,
                group=group,
                state="running" if group in known else "not running",
                before=before or "nowhere",
                after=after or "nowhere",
            )
        )
    for group, servers in conflicts.items():
        found.append(
            events.GROUP_ON_TWO_SERVERS.make(
                at=now,
                cause=report.id,
                group=group,
                servers=", ".join(servers),
                kept=view.placement.get(group) or "nowhere",
            )
        )
    return found
