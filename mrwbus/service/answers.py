"""Operators' requests to the service, answered from the cluster state: pure, no I/O.

The status belongs to the service; `clear` is the one way an operator changes it, and every
change is an event. The service publishes the events, then replies.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from mrwbus.core import events, operator_verbs
from mrwbus.core.cluster import ClusterState
from mrwbus.core.decision import Decision
from mrwbus.core.progress import FenceIncident
from mrwbus.core.status import status_report
from mrwbus.messages import (
    ControlReply,
    ControlRequest,
    ControlVerb,
    Event,
    FenceAction,
    StatusReport,
    derived_id,
)

_DEAD_LETTER_EVENTS = {
    "list": events.DEAD_LETTERS_LISTED,
    "show": events.DEAD_LETTER_SHOWN,
    "replay": events.DEAD_LETTERS_REPLAYED,
    "purge": events.DEAD_LETTERS_PURGED,
}


def dead_letter_event(request: ControlRequest, now: datetime) -> Event:
    """The event that records an operator's dead-letter operation (the CLI did the work)."""
    note = request.dead_letters
    assert note is not None
    return _DEAD_LETTER_EVENTS[note.operation].make(
        at=now,
        cause=request.id,
        by=request.by,
        count=note.count,
        selection=note.selection,
        selection_text=f" ({note.selection})" if note.selection else "",
    )


Answer = tuple[ControlReply, Decision]
"""The reply to a request, and what it decided (applied to the state already)."""


def handle_control(
    cluster: ClusterState,
    request: ControlRequest,
    now: datetime,
    status: Callable[[], StatusReport] | None = None,
) -> Answer:
    """The reply to one request and its decision, applied to `cluster`; `status` builds the
    report a `status` request gets (by default the cluster's alone)."""
    reply, decision = _answer(cluster, request, now, status or (lambda: status_report(cluster)))
    cluster.apply(decision)
    return reply, decision


def _answer(
    cluster: ClusterState,
    request: ControlRequest,
    now: datetime,
    status: Callable[[], StatusReport],
) -> Answer:
    def refuse(error: str) -> Answer:
        return ControlReply(id=request.id, ok=False, error=error), Decision()

    if request.verb is ControlVerb.PING:
        return ControlReply(id=request.id, ok=True, text="pong"), Decision()
    if request.verb is ControlVerb.STATUS:
        return ControlReply(id=request.id, ok=True, status=status()), Decision()
    if request.verb is ControlVerb.PLACE:
        return _place(cluster, request, now)
    if request.verb is ControlVerb.FENCE:
        return _fence(cluster, request, now)
    if request.verb is ControlVerb.DEAD_LETTERS:
        if request.dead_letters is None:
            return refuse("dead_letters: say what was done (the dead_letters field)")
        event = dead_letter_event(request, now)
        return ControlReply(id=request.id, ok=True, text=event.text), Decision(events=(event,))

    if request.all:
        monitors = list(cluster.config.monitors)
    elif request.monitor is None:
        return refuse("name a monitor, or use --all")
    elif request.monitor not in cluster.config.monitors:
        known = ", ".join(cluster.config.monitors) or "none"
        return refuse(f"there is no monitor {request.monitor!r} (known: {known})")
    else:
        monitors = [request.monitor]

    decided = Decision()
    if request.verb is ControlVerb.CLEAR:
        for monitor in monitors:
            servers = cluster.servers_of(monitor)
            if request.server is not None:
                if request.server not in servers:
                    return refuse(f"monitor {monitor} does not watch server {request.server!r}")
                servers = [request.server]
            for server in servers:
                decided += operator_verbs.clear(
                    cluster,
                    monitor,
                    server,
                    reset_counts=request.reset_counts,
                    by=request.by,
                    now=now,
                    cause=request.id,
                )
        cleared = sorted(
            {
                event.server or ""
                for event in decided.events
                if event.code == events.STATUS_CLEARED.code
            }
        )
        counts = "counts reset" if request.reset_counts else "counts kept"
        what = (
            f"Error -> Normal on {', '.join(cleared)}, {counts}"
            if cleared
            else f"nothing was in Error, {counts}"
        )
    elif request.verb is ControlVerb.SUSPEND:
        for monitor in monitors:
            decided += operator_verbs.suspend(
                cluster, monitor, by=request.by, now=now, cause=request.id
            )
        what = "suspended"
    else:
        for monitor in monitors:
            decided += operator_verbs.resume(
                cluster, monitor, by=request.by, now=now, cause=request.id
            )
        what = "resumed"
    where = f" on {request.server}" if request.server else ""
    text = f"{', '.join(monitors)}{where}: {what}."
    return ControlReply(id=request.id, ok=True, text=text), decided


def _place(cluster: ClusterState, request: ControlRequest, now: datetime) -> Answer:
    """An operator says where a group really runs (or that it runs nowhere)."""
    config = cluster.config

    def refuse(error: str) -> Answer:
        return ControlReply(id=request.id, ok=False, error=error), Decision()

    group, server = request.group, request.server
    if group is None or group not in config.groups:
        return refuse(f"there is no group {group!r} (known: {', '.join(config.groups) or 'none'})")
    if server is not None and server not in config.groups[group].servers:
        listed = ", ".join(config.groups[group].servers)
        return refuse(f"group {group} cannot run on {server!r} (its servers: {listed})")
    if not request.reason.strip():
        return refuse("say why with --reason; it goes into the event log")
    if group in cluster.failovers:
        progress = cluster.failovers[group]
        return refuse(
            f"a failover of {group} is in progress ({progress.from_server} -> "
            f"{progress.to_server}, {progress.phase.value}); it owns the placement until it is over"
        )
    placed = operator_verbs.place(
        cluster, group, server, reason=request.reason, by=request.by, now=now, cause=request.id
    )
    return ControlReply(
        id=request.id, ok=True, text=f"{group}: placed on {server or 'no server'}."
    ), placed


def _fence(cluster: ClusterState, request: ControlRequest, now: datetime) -> Answer:
    """An operator's fence of a server through its BMC, by a peer (`core.fencing`)."""
    config, server = cluster.config, request.server
    action = request.fence_action or FenceAction.OFF

    def refuse(error: str) -> Answer:
        return ControlReply(id=request.id, ok=False, error=error), Decision()

    if server is None or server not in config.servers:
        return refuse(f"there is no server {server!r} (known: {', '.join(config.servers)})")
    if config.bmc_of(server) is None:
        return refuse(f"{server} has no bmc in the configuration: nobody can fence it")
    if action.proves_stopped and not request.force:
        healthy = set(cluster.view.alive) - cluster.servers_in_error() - set(cluster.view.down)
        if not healthy - {server}:
            return refuse(f"{server} is the last healthy server; --force to fence it anyway")
    fencer = cluster.fencing().fencer_for(server)
    if fencer is None and server not in cluster.fences:
        return refuse(f"no peer can fence {server} now (none alive, healthy and allowed)")
    incident = FenceIncident(
        id=derived_id("fence", "operator", request.id),
        target=server,
        action=action,
        cause="operator",
        reason=f"asked by {request.by}",
        recover_groups=action.proves_stopped,
        deadline=now,
    )
    decision = cluster.request_fence(incident, now)
    under_way = decision.fences[0]
    if under_way.id != incident.id:
        text = f"{server}: a fence ({under_way.action.value}) is under way already: {under_way.reason}."
    else:
        text = f"{server}: {action.value} through its BMC asked of {under_way.fencer}'s agent."
    return ControlReply(id=request.id, ok=True, text=text), decision
