"""An operator's clear, suspend, resume and place, decided like any other input.

Each takes the state and the request's facts and returns a `Decision` (the events and the
changes); `ClusterState.apply` makes the changes, the outbox journals and publishes, as for a
fault. Pure: the service's control answers (`service.answers`) and the tests call these.
"""

from __future__ import annotations

from datetime import datetime

from mrwbus.core import events
from mrwbus.core.cluster import ClusterState
from mrwbus.core.decision import Decision
from mrwbus.core.monitor import Status


def clear(
    cluster: ClusterState,
    monitor: str,
    server: str,
    *,
    reset_counts: bool,
    by: str,
    now: datetime,
    cause: str,
) -> Decision:
    """Error -> Normal, counts kept unless `reset_counts`."""
    state = cluster.state_of(monitor, server)
    found = []
    if state.status is Status.ERROR:
        found.append(
            events.STATUS_CLEARED.make(at=now, cause=cause, monitor=monitor, server=server, by=by)
        )
    if reset_counts and state.has_counts:
        found.append(
            events.COUNTS_RESET.make(at=now, cause=cause, monitor=monitor, server=server, by=by)
        )
    return Decision(
        events=tuple(found),
        states={(monitor, server): state.cleared(reset_counts=reset_counts)},
    )


def place(
    cluster: ClusterState,
    group: str,
    server: str | None,
    *,
    reason: str,
    by: str,
    now: datetime,
    cause: str,
) -> Decision:
    """Where a group really runs, by an operator's word (the caller refuses it while the
    group's failover is in progress: that failover owns the placement)."""
    assert group not in cluster.failovers
    before = cluster.view.placement.get(group)
    placed = events.GROUP_PLACED.make(
        at=now,
        cause=cause,
        group=group,
        server=server,
        where=server or "no server",
        before=before or "nowhere",
        by=by,
        reason=reason,
    )
    return Decision(events=(placed,), moves={group: server})


def suspend(cluster: ClusterState, monitor: str, *, by: str, now: datetime, cause: str) -> Decision:
    if monitor in cluster.suspended:
        return Decision()
    event = events.MONITOR_SUSPENDED.make(at=now, cause=cause, monitor=monitor, by=by)
    return Decision(events=(event,), suspended={monitor: True})


def resume(cluster: ClusterState, monitor: str, *, by: str, now: datetime, cause: str) -> Decision:
    if monitor not in cluster.suspended:
        return Decision()
    event = events.MONITOR_RESUMED.make(at=now, cause=cause, monitor=monitor, by=by)
    return Decision(events=(event,), suspended={monitor: False})
