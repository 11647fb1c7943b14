"""Groups follow a server that a final action took down.

A final action that takes its server down (stop of the cluster service, shutdown, reboot,
panic, keepalive, BMC) has succeeded, or the server was fenced: whatever ran there runs no
more, so the stop is confirmed. The groups that were active there fail over by the usual rules
(the next eligible server in priority order), each start waiting for its confirmation as any
failover's does (`core.failover`). Per monitor: `recovery.move_groups_after_final_action`.

A server that merely fell silent is never treated as down: without a confirmed final action
or a verified fence (`core.fencing`) nothing proves its groups stopped, and starting them
elsewhere could run them twice. Pure.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from mrwbus.config.model import ClusterConfig
from mrwbus.core import events
from mrwbus.core.decision import Decision
from mrwbus.core.failover import FailoverRules
from mrwbus.core.placement import ClusterView, choose_failover_destination
from mrwbus.core.progress import FailoverInProgress, FaultFacts, Phase
from mrwbus.messages import Action, Event, RecoveryCommand


def took_server_down(command: RecoveryCommand) -> bool:
    """A final action that, once it succeeded, leaves nothing running on its server."""
    return (
        command.action is Action.FINAL_ACTION
        and command.final_action is not None
        and command.final_action.takes_server_down
    )


@dataclass(frozen=True)
class ServerDown:
    """What took a server down, as the failovers of its groups carry it."""

    server: str
    how: str
    """`shutdown`, `fenced (off)`, ...: for events."""
    cause: str
    """The command or fence incident that proved it: event ids and the failovers derive from it."""
    monitor: str
    fault_id: str
    fault: FaultFacts | None = None
    outside_server_group: bool = False

    @classmethod
    def by_final_action(cls, command: RecoveryCommand, config: ClusterConfig) -> ServerDown:
        assert command.final_action is not None
        monitor = config.monitors.get(command.monitor)
        return cls(
            server=command.acted_on,
            how=command.final_action.value,
            cause=command.id,
            monitor=command.monitor,
            fault_id=command.fault_id,
            fault=FaultFacts(command.category, command.device or "", command.message or "")
            if command.category
            else None,
            outside_server_group=monitor is not None
            and monitor.recovery.outside_server_group
            and monitor.recovery.action is Action.FAILOVER,
        )


def follow_downed_server(
    config: ClusterConfig,
    view: ClusterView,
    down: ServerDown,
    servers_in_error: Collection[str],
    now: datetime,
) -> Decision:
    """The failovers of the groups active on `down.server`, which nothing runs any more (a
    succeeded final action that takes the server down, or a verified fence stopped them)."""
    server = down.server
    rule = config.service.exclude_destinations
    rules = FailoverRules(config, view, servers_in_error, rule)
    decision = Decision()
    for group in view.groups_on(server):
        if group in view.moving:
            continue  # its own failover (the fencing one, say) moves it

        def event(kind: events.EventType, group: str = group, **detail: str) -> Event:
            return kind.make(
                at=now,
                cause=f"{down.cause}/down/{group}",
                monitor=down.monitor,
                server=server,
                fault_id=down.fault_id,
                group=group,
                final_action=down.how,
                **detail,
            )

        destination = choose_failover_destination(
            config,
            group,
            server,
            servers_in_error=servers_in_error,
            alive=view.alive,
            outside_server_group=down.outside_server_group,
            rule=rule,
        )
        if destination.server is None:
            stranded = event(events.GROUP_STRANDED, reason=destination.reason)
            decision += Decision(events=(stranded,), moves={group: None})
            continue
        following = event(events.GROUP_FOLLOWS_SERVER, to_server=destination.server)
        # Stopped by the final action or the fence: the failover goes straight to its start.
        stopped = FailoverInProgress(
            group=group,
            monitor=down.monitor,
            fault_id=down.fault_id,
            from_server=server,
            to_server=destination.server,
            phase=Phase.STOPPING,
            awaiting=down.cause,
            deadline=now,
            fault=down.fault,
        )
        decision += rules.start(stopped, now, found=(following,))
    return decision
