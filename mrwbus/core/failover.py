"""An ordered failover, step by step: stop on the source, then start on the destination.

Never risk a group running twice: the start is sent only once the source confirmed the stop.
If the source does not answer in time, the group stays where it was, unless the monitor
fences first: then the source gets the final action, and the start waits for its success. A
failed start moves on to the next eligible server in priority order. Pure: each function takes
the failover in progress and what happened, and returns what to do next.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from mrwbus.config.model import ClusterConfig, ExcludeRule
from mrwbus.core import events
from mrwbus.core.decision import Decision, recovery_command
from mrwbus.core.placement import ClusterView, choose_failover_destination
from mrwbus.core.progress import FailoverInProgress, FenceIncident, Phase
from mrwbus.messages import (
    Action,
    CommandResult,
    CommandStep,
    Event,
    FenceAction,
    Outcome,
    RecoveryCommand,
    derived_id,
)


def _going_on(progress: FailoverInProgress, *found: Event, **more: object) -> Decision:
    """The failover carries on (a result for an earlier step, a deadline not yet due)."""
    return Decision(events=found, failovers=(progress,), **more)  # type: ignore[arg-type]


def _over(
    progress: FailoverInProgress, found: list[Event], placement: str | None = None, *, leave: bool
) -> Decision:
    """The failover is over: the group runs on `placement`, or stays where it was (`leave`)."""
    moves = {} if leave else {progress.group: placement}
    return Decision(events=tuple(found), moves=moves, ended=(progress.group,))


def failover_command(
    progress: FailoverInProgress,
    step: CommandStep,
    server: str,
    now: datetime,
    *,
    to_server: str | None = None,
) -> RecoveryCommand:
    """The stop (on the source) or the start (on `to_server`) of a failover."""
    return _command(
        progress,
        server,
        now,
        action=Action.FAILOVER,
        step=step,
        from_server=progress.from_server,
        to_server=to_server or progress.to_server,
        before_script=progress.before_script if step is CommandStep.STOP else None,
    )


def _command(
    progress: FailoverInProgress, server: str, now: datetime, **facts: Any
) -> RecoveryCommand:
    return recovery_command(
        fault_id=progress.fault_id,
        monitor=progress.monitor,
        server=server,
        group=progress.group,
        issued_at=now,
        fault=progress.fault,
        **facts,
    )


FenceRequest = Callable[[FenceIncident, datetime], Decision]
"""Starts a fence through a BMC (`core.fencing`), or joins the one under way."""


class FailoverRules:
    """The facts a failover step needs from the configuration and the cluster view."""

    def __init__(
        self,
        config: ClusterConfig,
        view: ClusterView,
        servers_in_error: Collection[str],
        rule: ExcludeRule = "any_error",
        fence: FenceRequest | None = None,
    ) -> None:
        self.config = config
        self.view = view
        self.servers_in_error = servers_in_error
        """The servers `rule` (`service.exclude_destinations`) disqualifies as destinations."""
        self.rule = rule
        self.fence = fence

    def timeout(self, phase: Phase) -> timedelta:
        service = self.config.service
        return service.start_timeout if phase is Phase.STARTING else service.stop_timeout

    def _event(
        self, kind: events.EventType, progress: FailoverInProgress, now: datetime, **facts: object
    ) -> Event:
        facts.setdefault("server", progress.from_server)
        return kind.make(
            at=now,
            cause=f"{progress.fault_id}/{progress.awaiting}",
            monitor=progress.monitor,
            fault_id=progress.fault_id,
            group=progress.group,
            to_server=progress.to_server,
            **facts,  # type: ignore[arg-type]
        )

    def on_result(
        self, progress: FailoverInProgress, result: CommandResult, now: datetime
    ) -> Decision:
        if result.command_id != progress.awaiting:
            return _going_on(progress)  # a late or repeated result for an earlier step
        succeeded = result.outcome is Outcome.SUCCEEDED
        why = f"{result.outcome.value}: {result.detail}" if result.detail else result.outcome.value
        if progress.phase is Phase.STOPPING:
            return (
                self.start(progress, now)
                if succeeded
                else self._source_unconfirmed(progress, now, why)
            )
        if progress.phase is Phase.FENCING:
            if succeeded:
                return self.start(progress, now)
            failed = self._event(events.FENCING_FAILED, progress, now, why=why)
            return _over(progress, [failed], leave=True)
        if succeeded:
            done = self._event(events.FAILOVER_DONE, progress, now)
            return _over(progress, [done], progress.to_server, leave=False)
        failed = self._event(events.START_FAILED, progress, now, why=why)
        return self._next_destination(progress, now, [failed])

    def on_deadline(self, progress: FailoverInProgress, now: datetime) -> Decision:
        if now < progress.deadline:
            return _going_on(progress)
        timeout = self.timeout(progress.phase)
        if progress.phase is Phase.STOPPING:
            return self._source_unconfirmed(progress, now, f"no answer within {_seconds(timeout)}")
        if progress.phase is Phase.FENCING:
            failed = self._event(
                events.FENCING_FAILED, progress, now, why=f"no answer within {_seconds(timeout)}"
            )
            return _over(progress, [failed], leave=True)
        unknown = self._event(events.START_NOT_CONFIRMED, progress, now, timeout=_seconds(timeout))
        return _over(progress, [unknown], None, leave=False)

    def _source_unconfirmed(
        self, progress: FailoverInProgress, now: datetime, why: str
    ) -> Decision:
        recovery = self.config.monitors[progress.monitor].recovery
        if not recovery.fence_first:
            refused = self._event(events.STOP_NOT_CONFIRMED, progress, now, why=why)
            return _over(progress, [refused], leave=True)
        if self.fence is not None and self.config.bmc_of(progress.from_server) is not None:
            return self._fence_through_bmc(progress, now, why)
        fence = _command(
            progress,
            progress.from_server,
            now,
            action=Action.FINAL_ACTION,
            fence=True,
            final_action=recovery.final_action,
        )
        fencing = replace(
            progress,
            phase=Phase.FENCING,
            awaiting=fence.id,
            deadline=now + self.timeout(Phase.FENCING),
        )
        event = self._event(
            events.FENCING, progress, now, why=why, final_action=recovery.final_action.value
        )
        return _going_on(fencing, event, commands=(fence,))

    def _fence_through_bmc(self, progress: FailoverInProgress, now: datetime, why: str) -> Decision:
        """The source has a BMC: a peer powers it off, and the start waits for that proof."""
        assert self.fence is not None
        incident = FenceIncident(
            id=derived_id(
                "fence", "fence_first", progress.fault_id, progress.monitor, progress.from_server
            ),
            target=progress.from_server,
            action=FenceAction.OFF,
            cause="fence_first",
            reason=f"{progress.monitor}: it did not confirm the stop of {progress.group} ({why})",
            recover_groups=True,
            deadline=now,
            monitor=progress.monitor,
            fault_id=progress.fault_id,
            fault=progress.fault,
        )
        started = self.fence(incident, now)
        awaited = started.fences[0].id  # this fence, or the one under way for the server
        fencing = replace(
            progress,
            phase=Phase.FENCING,
            awaiting=awaited,
            deadline=now + self.timeout(Phase.FENCING),
        )
        event = self._event(events.FENCING, progress, now, why=why, final_action="its BMC (off)")
        return _going_on(fencing, event) + started

    def start(
        self,
        progress: FailoverInProgress,
        now: datetime,
        to_server: str | None = None,
        found: tuple[Event, ...] = (),
    ) -> Decision:
        """The start on the destination, once the source is known to be stopped (or down)."""
        to = to_server or progress.to_server
        start = failover_command(progress, CommandStep.START, to, now, to_server=to)
        starting = replace(
            progress,
            phase=Phase.STARTING,
            to_server=to,
            awaiting=start.id,
            deadline=now + self.timeout(Phase.STARTING),
            tried=(*progress.tried, to),
        )
        issued = events.command_issued(
            start,
            at=now,
            cause=start.id,
            server=progress.from_server,
            description=f"failover of group {progress.group} (start; {progress.from_server} -> {to})",
        )
        # Stopped (or fenced) on the source: the group runs nowhere until the start is confirmed.
        moves = {} if progress.phase is Phase.STARTING else {progress.group: None}
        return _going_on(starting, *found, issued, commands=(start,), moves=moves)

    def _next_destination(
        self, progress: FailoverInProgress, now: datetime, found: list[Event]
    ) -> Decision:
        monitor = self.config.monitors.get(progress.monitor)
        destination = choose_failover_destination(
            self.config,
            progress.group,
            progress.from_server,
            servers_in_error=self.servers_in_error,
            alive=self.view.alive,
            outside_server_group=monitor is not None and monitor.recovery.outside_server_group,
            excluded=progress.tried,
            rule=self.rule,
        )
        if destination.server is None:
            found.append(
                self._event(events.NO_SERVER_LEFT, progress, now, reason=destination.reason)
            )
            return _over(progress, found, None, leave=False)
        return self.start(progress, now, destination.server, tuple(found))


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():g} s"
