"""The whole cluster's state as the service sees it, and the operations that change it.

Every change goes through a pure decision (`core.recovery`) and is applied here in one step,
so the service, `simulate` and the tests all drive the same code.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from mrwbus.config import ActiveTiming, ClusterConfig
from mrwbus.core import events
from mrwbus.core.monitor import MonitorServerState, Status
from mrwbus.core.placement import ClusterView, target_groups
from mrwbus.core.recovery import Decision, Situation, decide_fault
from mrwbus.messages import (
    Event,
    FaultNotification,
    GroupRow,
    MonitorStatusRow,
    ServerRow,
    ShownStatus,
    StatusReport,
)

Key = tuple[str, str]
"""(monitor, server)"""


@dataclass
class ClusterState:
    config: ClusterConfig
    view: ClusterView
    monitors: dict[Key, MonitorServerState]
    suspended: set[str]
    protect_last_healthy_server: bool = True

    @classmethod
    def initial(
        cls, config: ClusterConfig, *, protect_last_healthy_server: bool = True
    ) -> ClusterState:
        return cls(
            config=config,
            view=ClusterView.initial(config),
            monitors={
                (name, server): MonitorServerState()
                for name in config.monitors
                for server in config.monitored_servers(name)
            },
            suspended=set(),
            protect_last_healthy_server=protect_last_healthy_server,
        )

    def __post_init__(self) -> None:
        self._errors = Counter(
            server for (_, server), st in self.monitors.items() if st.status is Status.ERROR
        )

    # --- queries ------------------------------------------------------------------------

    def servers_in_error(self) -> set[str]:
        return {server for server, count in self._errors.items() if count > 0}

    def state_of(self, monitor: str, server: str) -> MonitorServerState:
        return self.monitors[(monitor, server)]

    def servers_of(self, monitor: str) -> list[str]:
        return [server for (name, server) in self.monitors if name == monitor]

    def shown_status(self, monitor: str, server: str) -> ShownStatus:
        """The status an operator sees: Error wins, then Suspended, then Offline (timing)."""
        state = self.state_of(monitor, server)
        if state.status is Status.ERROR:
            return "Error"
        if monitor in self.suspended:
            return "Suspended"
        timing = self.config.monitors[monitor].timing
        if isinstance(timing, ActiveTiming) and not any(
            self.view.is_active(group, server)
            for group in target_groups(self.config, timing.active)
        ):
            return "Offline"
        return "Normal"

    def snapshot(self) -> StatusReport:
        rows = []
        for (monitor, server), state in sorted(self.monitors.items()):
            rows.append(
                MonitorStatusRow(
                    monitor=monitor,
                    server=server,
                    category=self.config.monitors[monitor].category,
                    status=self.shown_status(monitor, server),
                    faults=state.faults,
                    restarts=state.restarts,
                    failovers=state.failovers,
                    final_action_taken=state.final_action_taken,
                    last_fault_at=state.last_fault_at,
                    last_device=state.last_device,
                    last_message=state.last_message,
                )
            )
        return StatusReport(
            monitors=rows,
            groups=[GroupRow(group=g, server=s) for g, s in sorted(self.view.placement.items())],
            servers=[
                ServerRow(
                    server=name,
                    server_group=self.config.server_group(name),
                    alive=name in self.view.alive,
                )
                for name in self.config.servers
            ],
        )

    # --- changes ------------------------------------------------------------------------

    def handle_fault(self, monitor: str, fault: FaultNotification, now: datetime) -> Decision:
        """Decide what a fault matched to `monitor` does, and apply it."""
        situation = Situation(
            view=self.view,
            servers_in_error=self.servers_in_error(),
            suspended=monitor in self.suspended,
            protect_last_healthy_server=self.protect_last_healthy_server,
        )
        decision = decide_fault(
            self.config, monitor, fault, self.state_of(monitor, fault.server), situation, now
        )
        self.apply(monitor, fault.server, decision)
        return decision

    def apply(self, monitor: str, server: str, decision: Decision) -> None:
        self._set(monitor, server, decision.state)
        self.view.placement.update(decision.moves)

    def clear(
        self, monitor: str, server: str, *, reset_counts: bool, by: str, now: datetime, cause: str
    ) -> list[Event]:
        """An operator's clear: Error -> Normal, counts kept unless `reset_counts`."""
        state = self.state_of(monitor, server)
        found: list[Event] = []
        if state.status is Status.ERROR:
            found.append(
                events.STATUS_CLEARED.make(
                    at=now, cause=cause, monitor=monitor, server=server, by=by
                )
            )
        if reset_counts:
            found.append(
                events.COUNTS_RESET.make(at=now, cause=cause, monitor=monitor, server=server, by=by)
            )
        self._set(monitor, server, state.cleared(reset_counts=reset_counts))
        return found

    def suspend(self, monitor: str, *, by: str, now: datetime, cause: str) -> list[Event]:
        if monitor in self.suspended:
            return []
        self.suspended.add(monitor)
        return [events.MONITOR_SUSPENDED.make(at=now, cause=cause, monitor=monitor, by=by)]

    def resume(self, monitor: str, *, by: str, now: datetime, cause: str) -> list[Event]:
        if monitor not in self.suspended:
            return []
        self.suspended.discard(monitor)
        return [events.MONITOR_RESUMED.make(at=now, cause=cause, monitor=monitor, by=by)]

    def _set(self, monitor: str, server: str, state: MonitorServerState) -> None:
        before = self.monitors[(monitor, server)]
        self.monitors[(monitor, server)] = state
        self._errors[server] += (state.status is Status.ERROR) - (before.status is Status.ERROR)
