"""An ordered failover, step by step: stop on the source, then start on the destination.

Never risk a group running twice: the start is sent only once the source confirmed the stop.
If the source does not answer in time, the group stays where it was, unless the monitor
fences first: then the source gets the final action, and the start waits for its success. A
failed start moves on to the next eligible server in priority order. Pure: each function takes
the failover in progress and what happened, and returns what to do next.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from mrwbus.config import ClusterConfig
from mrwbus.core import events
from mrwbus.core.placement import ClusterView, choose_failover_destination
from mrwbus.messages import (
    Action,
    CommandResult,
    CommandStep,
    Event,
    Outcome,
    RecoveryCommand,
    derived_id,
)


class Phase(StrEnum):
    STOPPING = "stopping"  # waiting for the source to confirm the stop
    FENCING = "fencing"  # waiting for the source to confirm the final action
    STARTING = "starting"  # waiting for the destination to confirm the start


@dataclass(frozen=True)
class FailoverInProgress:
    group: str
    monitor: str
    fault_id: str
    from_server: str
    to_server: str
    phase: Phase
    awaiting: str
    """The id of the command whose result moves this failover on."""
    deadline: datetime
    tried: tuple[str, ...] = ()
    before_script: str | None = None


@dataclass
class FailoverStep:
    """What one result or one deadline does to a failover."""

    progress: FailoverInProgress | None
    """The failover after this step; None once it is over (done or given up)."""
    commands: list[RecoveryCommand] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    placement: str | None = None
    """Where the group runs when the failover is over (None: stopped, or left as it was)."""
    leave_placement: bool = False


def failover_command(
    progress: FailoverInProgress,
    step: CommandStep,
    server: str,
    now: datetime,
    *,
    to_server: str | None = None,
) -> RecoveryCommand:
    to = to_server or progress.to_server
    return RecoveryCommand(
        id=derived_id(
            "command",
            progress.fault_id,
            progress.monitor,
            server,
            "failover",
            progress.group,
            step,
            to,
        ),
        fault_id=progress.fault_id,
        monitor=progress.monitor,
        server=server,
        action=Action.FAILOVER,
        group=progress.group,
        step=step,
        from_server=progress.from_server,
        to_server=to,
        before_script=progress.before_script if step is CommandStep.STOP else None,
        issued_at=now,
    )


class FailoverRules:
    """The facts a failover step needs from the configuration and the cluster view."""

    def __init__(
        self, config: ClusterConfig, view: ClusterView, servers_in_error: set[str]
    ) -> None:
        self.config = config
        self.view = view
        self.servers_in_error = servers_in_error

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
    ) -> FailoverStep:
        if result.command_id != progress.awaiting:
            return FailoverStep(progress)  # a late or repeated result for an earlier step
        succeeded = result.outcome is Outcome.SUCCEEDED
        why = f"{result.outcome.value}: {result.detail}" if result.detail else result.outcome.value
        if progress.phase is Phase.STOPPING:
            return (
                self._start(progress, now)
                if succeeded
                else self._source_unconfirmed(progress, now, why)
            )
        if progress.phase is Phase.FENCING:
            if succeeded:
                return self._start(progress, now)
            return FailoverStep(
                None,
                events=[self._event(events.FENCING_FAILED, progress, now, why=why)],
                leave_placement=True,
            )
        if succeeded:
            done = self._event(events.FAILOVER_DONE, progress, now)
            return FailoverStep(None, events=[done], placement=progress.to_server)
        failed = self._event(events.START_FAILED, progress, now, why=why)
        return self._next_destination(progress, now, [failed])

    def on_deadline(self, progress: FailoverInProgress, now: datetime) -> FailoverStep:
        if now < progress.deadline:
            return FailoverStep(progress)
        timeout = self.timeout(progress.phase)
        if progress.phase is Phase.STOPPING:
            return self._source_unconfirmed(progress, now, f"no answer within {_seconds(timeout)}")
        if progress.phase is Phase.FENCING:
            failed = self._event(
                events.FENCING_FAILED, progress, now, why=f"no answer within {_seconds(timeout)}"
            )
            return FailoverStep(None, events=[failed], leave_placement=True)
        unknown = self._event(events.START_NOT_CONFIRMED, progress, now, timeout=_seconds(timeout))
        return FailoverStep(None, events=[unknown], placement=None)

    def _source_unconfirmed(
        self, progress: FailoverInProgress, now: datetime, why: str
    ) -> FailoverStep:
        recovery = self.config.monitors[progress.monitor].recovery
        if not recovery.fence_first:
            refused = self._event(events.STOP_NOT_CONFIRMED, progress, now, why=why)
            return FailoverStep(None, events=[refused], leave_placement=True)
        fence = RecoveryCommand(
            id=derived_id(
                "command",
                progress.fault_id,
                progress.monitor,
                progress.from_server,
                "fence",
                progress.group,
            ),
            fault_id=progress.fault_id,
            monitor=progress.monitor,
            server=progress.from_server,
            action=Action.FINAL_ACTION,
            group=progress.group,
            final_action=recovery.final_action,
            issued_at=now,
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
        return FailoverStep(fencing, commands=[fence], events=[event])

    def _start(
        self, progress: FailoverInProgress, now: datetime, to_server: str | None = None
    ) -> FailoverStep:
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
        issued = events.COMMAND_ISSUED.make(
            at=now,
            cause=start.id,
            monitor=progress.monitor,
            server=progress.from_server,
            fault_id=progress.fault_id,
            command_id=start.id,
            group=progress.group,
            description=f"failover of group {progress.group} (start; {progress.from_server} -> {to})",
            action=Action.FAILOVER.value,
            target_server=to,
        )
        return FailoverStep(starting, commands=[start], events=[issued])

    def _next_destination(
        self, progress: FailoverInProgress, now: datetime, found: list[Event]
    ) -> FailoverStep:
        recovery = self.config.monitors[progress.monitor].recovery
        destination = choose_failover_destination(
            self.config,
            progress.group,
            progress.from_server,
            servers_in_error=self.servers_in_error,
            alive=self.view.alive,
            outside_server_group=recovery.outside_server_group,
            excluded=progress.tried,
        )
        if destination.server is None:
            found.append(
                self._event(events.NO_SERVER_LEFT, progress, now, reason=destination.reason)
            )
            return FailoverStep(None, events=found, placement=None)
        step = self._start(progress, now, destination.server)
        step.events[:0] = found
        return step


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():g} s"
