"""The policy engine: a monitor's state, the cluster view and a fault in; a `Decision` out.

Like Pacemaker's scheduler it only computes: the caller applies the new state, publishes the
commands and events, and moves the groups. `mrwbus simulate` runs the very same functions.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime

from mrwbus.config.model import ActiveTiming, ClusterConfig, ExcludeRule, MonitorConfig
from mrwbus.core import events
from mrwbus.core.decision import Decision, LadderStep, NoStep, recovery_command
from mrwbus.core.failover import FenceRequest, failover_command
from mrwbus.core.monitor import MonitorServerState, Status, Step, count_step, next_step
from mrwbus.core.placement import ClusterView, choose_failover_destination, target_groups
from mrwbus.core.progress import FailoverInProgress, FaultFacts, FenceIncident, Phase
from mrwbus.messages import (
    Action,
    CommandStep,
    Event,
    FaultNotification,
    FinalAction,
    RecoveryCommand,
    derived_id,
)


@dataclass(frozen=True)
class Situation:
    """What the decision needs to know beyond the monitor itself."""

    view: ClusterView
    servers_in_error: Collection[str] = ()
    """The servers `rule` counts as unhealthy for this monitor (no destination, not healthy)."""
    suspended: bool = False
    protect_last_healthy_server: bool = True
    rule: ExcludeRule = "any_error"
    """`service.exclude_destinations`, named in the reasons."""
    fence: FenceRequest | None = None
    """Starts a fence through a BMC: a BMC final action is carried out by a peer."""


def decide_fault(
    config: ClusterConfig,
    monitor: str,
    fault: FaultNotification,
    state: MonitorServerState,
    situation: Situation,
    now: datetime,
) -> Decision:
    """The decision for a fault (or a recovery notice) that matched `monitor` on `fault.server`."""
    planner = _Planner(config, monitor, fault, situation, now)
    return planner.decide(state)


class _Planner:
    """Builds one decision; holds the facts so the steps read as a straight line."""

    def __init__(
        self,
        config: ClusterConfig,
        monitor: str,
        fault: FaultNotification,
        situation: Situation,
        now: datetime,
    ) -> None:
        self.config = config
        self.monitor = monitor
        self.settings: MonitorConfig = config.monitors[monitor]
        self.recovery = self.settings.recovery
        self.fault = fault
        self.server = fault.server
        self.situation = situation
        self.now = now
        self.events: list[Event] = []
        self.commands: list[RecoveryCommand] = []
        self.moves: dict[str, str | None] = {}
        self.failovers: list[FailoverInProgress] = []
        self.destinations: dict[str, str] = {}
        self.step: LadderStep | None = None
        self.fenced = Decision()
        """A fence this decision starts (a BMC final action), made by `core.fencing`."""

    def emit(self, kind: events.EventType, **facts: object) -> None:
        facts.setdefault("group", None)
        self.events.append(
            kind.make(
                at=self.now,
                cause=f"{self.fault.id}/{facts.get('group') or ''}/{facts.get('command_id') or ''}",
                monitor=self.monitor,
                server=self.server,
                fault_id=self.fault.id,
                **facts,  # type: ignore[arg-type]
            )
        )

    def done(self, state: MonitorServerState, why: NoStep | None = None) -> Decision:
        step = self.step
        if why is not None:
            step = LadderStep.none(why)
        return (
            Decision(
                commands=tuple(self.commands),
                events=tuple(self.events),
                step=step,
                state=state,
                moves=self.moves,
                failovers=tuple(self.failovers),
                destinations=self.destinations,
            )
            + self.fenced
        )

    def not_taken(self, why: NoStep, detail: str = "") -> None:
        self.step = LadderStep.none(why, detail)

    def decide(self, state: MonitorServerState) -> Decision:
        reset_after = self.recovery.reset_counts_after
        if state.counts_expired(reset_after, self.now):
            state = state.with_counts_reset()
            self.emit(events.COUNTS_EXPIRED, reset_after=str(reset_after))
        if self.fault.state == "recovered":
            return self.on_recovery_notice(state)

        fault = self.fault
        self.emit(events.ERROR_RECEIVED, category=fault.category.value, device=fault.device)
        if self.situation.suspended:
            self.emit(events.FAULT_WHILE_SUSPENDED)
            return self.done(
                state.record_fault(fault.id, fault.device, fault.message, self.now),
                NoStep.SUSPENDED,
            )
        timing = self.settings.timing
        if isinstance(timing, ActiveTiming) and not self.is_active_here(timing.active):
            self.emit(events.FAULT_NOT_MONITORED, active=timing.active)
            return self.done(state, NoStep.NOT_MONITORED)
        state = state.record_fault(fault.id, fault.device, fault.message, self.now)
        if state.status is Status.ERROR:
            return self.another_error(state)
        self.emit(events.ERROR_DETECTED)
        return self.done(self.recover(state.to_error()))

    def another_error(self, state: MonitorServerState) -> Decision:
        """A fault while in Error: counted and journaled like any other, but reported by an
        event at most once per `repeat_summary_interval`, so a fault storm does not become an
        event storm on the bus and in the log."""
        interval = self.config.service.repeat_summary_interval
        if not state.repeat_due(interval, self.now):
            self.events = [e for e in self.events if e.code != events.ERROR_RECEIVED.code]
            return self.done(replace(state, unreported=state.unreported + 1), NoStep.IN_ERROR)
        if state.unreported:
            self.events = [e for e in self.events if e.code != events.ERROR_RECEIVED.code]
            self.events.append(
                repeats_summary(
                    self.monitor,
                    self.server,
                    state,
                    self.now,
                    cause=self.fault.id,
                    count=state.unreported + 1,  # this fault too
                )
            )
        else:
            self.emit(events.FAULT_WHILE_ERROR, faults=state.faults)
        return self.done(state.reported(self.now), NoStep.IN_ERROR)

    def on_recovery_notice(self, state: MonitorServerState) -> Decision:
        self.emit(events.RECOVERY_NOTICE, device=self.fault.device)
        if self.recovery.clear_on_recovery and state.status is Status.ERROR:
            self.emit(events.RECOVERED_TO_NORMAL)
            return self.done(state.cleared(), NoStep.RECOVERY_NOTICE)
        return self.done(state, NoStep.RECOVERY_NOTICE)

    def is_active_here(self, group_or_resource: str) -> bool:
        return any(
            self.situation.view.is_active(group, self.server)
            for group in target_groups(self.config, group_or_resource)
        )

    # --- recovery ---------------------------------------------------------------------

    def recover(self, state: MonitorServerState) -> MonitorServerState:
        view = self.situation.view
        candidates = target_groups(self.config, self.recovery.target)
        for moving in candidates:
            if moving in view.moving and view.placement.get(moving) == self.server:
                self.emit(events.FAILOVER_IN_PROGRESS, group=moving)
        groups = [group for group in candidates if view.is_active(group, self.server)]
        if not groups:
            self.emit(events.TARGET_NOT_ACTIVE, target=self.recovery.target)
            self.not_taken(NoStep.TARGET_NOT_ACTIVE, self.recovery.target)
            return state
        step = next_step(self.recovery, state)
        if step is Step.EXHAUSTED:
            self.emit(events.LADDER_EXHAUSTED)
            self.not_taken(NoStep.EXHAUSTED)
            return state
        if step is Step.FINAL:
            # A suppressed final action was not taken: the next fault may take it.
            if not self.final_action(groups):
                return state
            self.step = LadderStep(self.final_text(state))
            return count_step(self.recovery, state, step)
        action = self.recovery.action
        if action is Action.FAILOVER:
            moved = [group for group in groups if self.failover(group)]
            if not moved:
                self.not_taken(NoStep.NO_DESTINATION, f"failover {self.of_limit(state)}")
                return state
        else:
            for group in groups if action is Action.RESTART else [None]:
                self.issue(action, group=group, description=self.describe(action, group))
        self.step = LadderStep(
            "script" if action is Action.SCRIPT else f"{action.value} {self.of_limit(state)}"
        )
        return count_step(self.recovery, state, step)

    def of_limit(self, state: MonitorServerState) -> str:
        """`2 of 3`: the count this step takes, and its maximum."""
        if self.recovery.action is Action.RESTART:
            return f"{state.restarts + 1} of {self.recovery.max_restarts}"
        return f"{state.failovers + 1} of {self.recovery.max_failovers}"

    def final_text(self, state: MonitorServerState) -> str:
        action, final = self.recovery.action, self.recovery.final_action.value
        if action is Action.FINAL_ACTION:
            return f"final action {final}"
        used, limit = (
            (state.restarts, self.recovery.max_restarts)
            if action is Action.RESTART
            else (state.failovers, self.recovery.max_failovers)
        )
        return f"final action {final} ({action.value}s used up: {used} of {limit})"

    def describe(self, action: Action, group: str | None) -> str:
        if group is None:
            return f"script {self.recovery.script!r}"
        resource = self.resource()
        return f"{action.value} of " + (
            f"resource {resource} of {group}" if resource else f"group {group}"
        )

    def resource(self) -> str | None:
        target = self.recovery.target
        return target if self.config.group_of_resource(target) else None

    def failover(self, group: str) -> bool:
        destination = choose_failover_destination(
            self.config,
            group,
            self.server,
            servers_in_error=self.situation.servers_in_error,
            alive=self.situation.view.alive,
            outside_server_group=self.recovery.outside_server_group,
            rule=self.situation.rule,
        )
        self.destinations[group] = destination.explained()
        if destination.server is None:
            self.emit(events.NO_DESTINATION, group=group, reason=destination.reason)
            return False
        # Only the stop is sent now; the start follows its confirmation (core.failover).
        progress = FailoverInProgress(
            group=group,
            monitor=self.monitor,
            fault_id=self.fault.id,
            from_server=self.server,
            to_server=destination.server,
            phase=Phase.STOPPING,
            awaiting="",
            deadline=self.now + self.config.service.stop_timeout,
            before_script=self.recovery.before_script,
            fault=FaultFacts.of(self.fault),
        )
        stop = failover_command(progress, CommandStep.STOP, self.server, self.now)
        self.send(stop, f"failover of group {group} (stop; {self.server} -> {destination.server})")
        self.failovers.append(replace(progress, awaiting=stop.id))
        return True

    def final_action(self, groups: list[str]) -> bool:
        """Take the final action; False when it was suppressed."""
        final = self.recovery.final_action
        if final is FinalAction.NONE:
            self.emit(events.FINAL_ACTION_NONE)
            return True
        if final.takes_server_down and self.situation.protect_last_healthy_server:
            healthy = (
                set(self.situation.view.alive)
                - set(self.situation.servers_in_error)
                - {self.server}
            )
            if not healthy:
                reason = (
                    f"{self.server} is the last healthy server of the cluster"
                    f" (exclude_destinations: {self.situation.rule})"
                )
                self.emit(events.FINAL_ACTION_SUPPRESSED, final_action=final.value, reason=reason)
                self.not_taken(NoStep.SUPPRESSED, f"{final.value}: {reason}")
                return False
        if final.fence_action is not None and self.through_bmc(final):
            return True
        for group in groups if final is FinalAction.STOP_GROUP else [None]:
            self.issue(
                Action.FINAL_ACTION,
                group=group,
                final_action=final,
                description=f"final action {final.value}" + (f" of group {group}" if group else ""),
            )
            if group is not None:
                self.moves[group] = None
        return True

    def through_bmc(self, final: FinalAction) -> bool:
        """A BMC final action on a server with a `bmc`: a peer fences it (`core.fencing`);
        False when the server has none and its own agent's handler must do it."""
        if self.situation.fence is None or self.config.bmc_of(self.server) is None:
            return False
        assert final.fence_action is not None
        incident = FenceIncident(
            id=derived_id("fence", self.fault.id, self.monitor, self.server),
            target=self.server,
            action=final.fence_action,
            cause="final_action",
            reason=f"{self.monitor}: final action {final.value}",
            recover_groups=self.recovery.move_groups_after_final_action,
            deadline=self.now,
            monitor=self.monitor,
            fault_id=self.fault.id,
            final_action=final,
            fault=FaultFacts.of(self.fault),
        )
        self.fenced = self.situation.fence(incident, self.now)
        return True

    def issue(
        self,
        action: Action,
        *,
        description: str,
        group: str | None = None,
        final_action: FinalAction | None = None,
    ) -> None:
        """A restart, script or final action for the fault's server (failovers: `failover`)."""
        server = self.server
        command = recovery_command(
            fault_id=self.fault.id,
            monitor=self.monitor,
            server=server,
            action=action,
            group=group,
            resource=self.resource() if action is Action.RESTART else None,
            final_action=final_action,
            script=self.recovery.script if action is Action.SCRIPT else None,
            before_script=self.recovery.before_script,
            issued_at=self.now,
            fault=FaultFacts.of(self.fault),
        )
        self.send(command, description)

    def send(self, command: RecoveryCommand, description: str) -> None:
        self.commands.append(command)
        cause = f"{self.fault.id}/{command.group or ''}/{command.id}"
        self.events.append(
            events.command_issued(
                command, at=self.now, cause=cause, server=self.server, description=description
            )
        )


def repeats_summary(
    monitor: str,
    server: str,
    state: MonitorServerState,
    now: datetime,
    *,
    cause: str,
    count: int,
) -> Event:
    """MRW-106: `count` faults while in Error since the last report (made by a fault, or by the
    passing of time)."""
    since = state.reported_at or now
    return events.REPEATS_SUMMARY.make(
        at=now,
        cause=f"{cause}/summary",
        monitor=monitor,
        server=server,
        fault_id=state.last_fault_id,
        count=count,
        window=f"{(now - since).total_seconds():.0f} s",
        device=state.last_device,
        faults=state.faults,
    )
