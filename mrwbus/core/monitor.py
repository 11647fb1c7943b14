"""One monitor's state on one server, and its recovery ladder.

The ladder: a fault while Normal turns the status to Error and takes the next step: the
configured action while its count is below its maximum (restart and failover are counted),
then the final action, once. A fault while Error is counted and starts nothing. A clear keeps
the counts (so flapping hardware still climbs the ladder); a reset, or `reset_counts_after`
since the last fault on this monitor and server, sets them back to zero. With `rearm_after`, a
monitor whose recovery succeeded returns to Normal by itself once no fault came for that long
(`rearm_due`), so flapping hardware climbs the ladder without recovery notices.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from mrwbus.config.model import RecoveryConfig
from mrwbus.messages import Action


class Status(StrEnum):
    NORMAL = "Normal"
    ERROR = "Error"


class Step(StrEnum):
    """What a fault while Normal does next on the ladder."""

    ACTION = "action"  # the configured action, counted for restart and failover
    FINAL = "final"  # the final action, taken once
    EXHAUSTED = "exhausted"  # the final action was already taken: nothing until counts reset


@dataclass(frozen=True)
class MonitorServerState:
    status: Status = Status.NORMAL
    restarts: int = 0
    failovers: int = 0
    final_action_taken: bool = False
    faults: int = 0
    last_fault_at: datetime | None = None
    last_fault_id: str | None = None
    last_device: str | None = None
    last_message: str | None = None
    recovered_at: datetime | None = None
    """When the recovery this Error took last succeeded (None: not yet, or Normal)."""
    unreported: int = 0
    """Faults while in Error that no event has reported yet: the next summary counts them."""
    reported_at: datetime | None = None
    """When a fault while in Error was last reported by an event (None: not since the Error
    began), so repeats are summarised once per `service.repeat_summary_interval`."""

    def record_fault(
        self, fault_id: str, device: str, message: str, at: datetime
    ) -> MonitorServerState:
        return replace(
            self,
            faults=self.faults + 1,
            last_fault_at=at,
            last_fault_id=fault_id,
            last_device=device,
            last_message=message,
        )

    def to_error(self) -> MonitorServerState:
        return replace(self, status=Status.ERROR, recovered_at=None, unreported=0, reported_at=None)

    def recovered(self, at: datetime) -> MonitorServerState:
        """Its recovery succeeded (only an Error waits for that)."""
        return replace(self, recovered_at=at) if self.status is Status.ERROR else self

    def rearm_due(self, rearm_after: timedelta | None, now: datetime) -> bool:
        """True when the recovery succeeded and no fault came for `rearm_after` since."""
        if rearm_after is None or self.status is not Status.ERROR or self.recovered_at is None:
            return False
        quiet_since = max(self.recovered_at, self.last_fault_at or self.recovered_at)
        return now - quiet_since >= rearm_after

    def repeat_due(self, interval: timedelta | None, now: datetime) -> bool:
        """Whether a fault while in Error is reported now (else it is counted for a summary)."""
        return interval is None or self.reported_at is None or now - self.reported_at >= interval

    def summary_due(self, interval: timedelta | None, now: datetime) -> bool:
        """Unreported repeats whose summary the passing of time owes."""
        return bool(self.unreported) and self.repeat_due(interval, now)

    def reported(self, now: datetime) -> MonitorServerState:
        return replace(self, unreported=0, reported_at=now)

    def cleared(self, reset_counts: bool = False) -> MonitorServerState:
        state = replace(self, status=Status.NORMAL, recovered_at=None)
        return state.with_counts_reset() if reset_counts else state

    def with_counts_reset(self) -> MonitorServerState:
        return replace(self, restarts=0, failovers=0, final_action_taken=False)

    @property
    def has_counts(self) -> bool:
        return bool(self.restarts or self.failovers or self.final_action_taken)

    def counts_expired(self, reset_after: timedelta | None, now: datetime) -> bool:
        """True when `reset_after` has passed since the last fault and there is something to reset."""
        return (
            reset_after is not None
            and self.has_counts
            and self.last_fault_at is not None
            and now - self.last_fault_at >= reset_after
        )


def next_step(recovery: RecoveryConfig, state: MonitorServerState) -> Step:
    """The ladder step a fault while Normal takes, given the counts so far."""
    if recovery.action is Action.SCRIPT:
        return Step.ACTION
    if recovery.action is Action.RESTART and state.restarts < recovery.max_restarts:
        return Step.ACTION
    if recovery.action is Action.FAILOVER and state.failovers < recovery.max_failovers:
        return Step.ACTION
    return Step.EXHAUSTED if state.final_action_taken else Step.FINAL


def count_step(
    recovery: RecoveryConfig, state: MonitorServerState, step: Step
) -> MonitorServerState:
    """The state after `step` was taken."""
    if step is Step.FINAL:
        return replace(state, final_action_taken=True)
    if step is Step.ACTION and recovery.action is Action.RESTART:
        return replace(state, restarts=state.restarts + 1)
    if step is Step.ACTION and recovery.action is Action.FAILOVER:
        return replace(state, failovers=state.failovers + 1)
    return state
