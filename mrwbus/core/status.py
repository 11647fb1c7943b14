"""What an operator sees of the cluster: each monitor's shown status, the groups, the servers.

Read-only over `ClusterState`; `status`, the status page and the control reply all show this.
Pure.
"""

from __future__ import annotations

from mrwbus.config.model import ActiveTiming
from mrwbus.core.cluster import ClusterState
from mrwbus.core.monitor import Status
from mrwbus.core.placement import target_groups
from mrwbus.messages import (
    DownRow,
    GroupRow,
    MonitorStatusRow,
    ServerRow,
    ShownStatus,
    StatusReport,
)


def shown_status(cluster: ClusterState, monitor: str, server: str) -> ShownStatus:
    """The status an operator sees: Error wins, then Suspended, then Offline (timing)."""
    state = cluster.state_of(monitor, server)
    if state.status is Status.ERROR:
        return "Error"
    if monitor in cluster.suspended:
        return "Suspended"
    timing = cluster.config.monitors[monitor].timing
    if isinstance(timing, ActiveTiming) and not any(
        cluster.view.is_active(group, server)
        for group in target_groups(cluster.config, timing.active)
    ):
        return "Offline"
    return "Normal"


def status_report(cluster: ClusterState) -> StatusReport:
    config = cluster.config
    rows = [
        MonitorStatusRow(
            monitor=monitor,
            server=server,
            category=config.monitors[monitor].category,
            status=shown_status(cluster, monitor, server),
            faults=state.faults,
            restarts=state.restarts,
            failovers=state.failovers,
            final_action_taken=state.final_action_taken,
            last_fault_at=state.last_fault_at,
            last_device=state.last_device,
            last_message=state.last_message,
        )
        for (monitor, server), state in sorted(cluster.monitors.items())
    ]
    return StatusReport(
        monitors=rows,
        groups=[GroupRow(group=g, server=s) for g, s in sorted(cluster.view.placement.items())],
        servers=[
            ServerRow(
                server=name,
                server_group=config.server_group(name),
                alive=name in cluster.view.alive,
                agent_node=cluster.agent_nodes.get(name),
                down=_down_row(cluster, name),
                fencing=_fencing(cluster, name),
                executor_notes=cluster.executor_notes.get(name, []),
            )
            for name in config.servers
        ],
    )


def _down_row(cluster: ClusterState, server: str) -> DownRow | None:
    down = cluster.view.down.get(server)
    return DownRow(how=down.how, at=down.at, by=down.by) if down else None


def _fencing(cluster: ClusterState, server: str) -> str | None:
    incident = cluster.fences.get(server)
    if incident is None:
        return None
    if incident.fencer is not None:
        return f"{incident.action.value} asked of {incident.fencer} ({incident.reason})"
    return f"{incident.action.value} failed {incident.rounds}x, next try at {incident.deadline.isoformat()}"
