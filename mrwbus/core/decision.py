"""What one input does: the one `Decision` type of the core, and the one command builder.

A fault, a result, a report, the passing of time and an operator's request all come out of the
core as a `Decision`: the commands to send, the events to publish, the ladder step a fault took
(or why it took none), and the changes to apply to the cluster state. The service journals it,
publishes it and then acknowledges its input (`mrwbus.service.outbox`); `mrwbus simulate` prints it.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

from mrwbus.core.progress import Down, FailoverInProgress, FaultFacts, FenceIncident
from mrwbus.messages import (
    Action,
    CommandStep,
    Event,
    FenceAction,
    FinalAction,
    RecoveryCommand,
    derived_id,
)

if TYPE_CHECKING:
    from mrwbus.core.monitor import MonitorServerState


class NoStep(StrEnum):
    """Why a fault took no step of its monitor's ladder (nothing was counted)."""

    RECOVERY_NOTICE = "a recovery notice takes no step"
    SUSPENDED = "the monitor is suspended: the fault is counted, nothing is started"
    NOT_MONITORED = "outside the monitor's active timing: its group does not run here"
    IN_ERROR = "already in Error: the fault is counted, nothing is started"
    TARGET_NOT_ACTIVE = "the target is not active on this server"
    EXHAUSTED = "exhausted: the final action was already taken; counts must be reset"
    SUPPRESSED = "the final action was suppressed"
    NO_DESTINATION = "no failover destination"


@dataclass(frozen=True)
class LadderStep:
    """The ladder step a fault took (`restart 2 of 3`), or why it took none (`not_taken`)."""

    text: str
    not_taken: NoStep | None = None

    @classmethod
    def none(cls, why: NoStep, detail: str = "") -> LadderStep:
        return cls(f"none: {why.value}" + (f" ({detail})" if detail else ""), why)

    @property
    def taken(self) -> bool:
        return self.not_taken is None


@dataclass(frozen=True)
class Decision:
    """What one input does to the cluster: messages to send, and changes to apply.

    `ClusterState` applies it in the same synchronous step it is made in; the outbox then
    journals it, publishes its messages through the `Publisher` and acknowledges the input.
    """

    commands: tuple[RecoveryCommand, ...] = ()
    events: tuple[Event, ...] = ()
    step: LadderStep | None = None
    """For a fault: the ladder step it took, or why none. None for any other input."""
    state: MonitorServerState | None = None
    """For a fault: its monitor's new state on the fault's server."""
    states: Mapping[tuple[str, str], MonitorServerState] = field(default_factory=dict)
    """For an operator's request: (monitor, server) -> the monitor's new state there."""
    suspended: Mapping[str, bool] = field(default_factory=dict)
    """Monitors an operator suspended (True) or resumed (False)."""
    moves: Mapping[str, str | None] = field(default_factory=dict)
    """Groups whose placement this changes: group -> server it runs on (None: nowhere)."""
    failovers: tuple[FailoverInProgress, ...] = ()
    """Failovers started or moved on by this decision."""
    ended: tuple[str, ...] = ()
    """Groups whose failover is over (done or given up)."""
    fences: tuple[FenceIncident, ...] = ()
    """Fences started or moved on by this decision."""
    fences_ended: tuple[str, ...] = ()
    """Servers whose fence is over (verified)."""
    downs: Mapping[str, Down | None] = field(default_factory=dict)
    """Servers now known down (fenced, or taken down by a final action); None: back."""
    destinations: Mapping[str, str] = field(default_factory=dict)
    """For a failover: group -> how its destination was chosen (the servers passed over and
    why), for `simulate` to print as the decision made it. Never journaled."""
    confirmed: bool = False
    """Set by the outbox once the broker confirmed every message (journal records only)."""

    @property
    def changes_shared_state(self) -> bool:
        return bool(
            self.moves or self.failovers or self.ended or self.fences or self.fences_ended
        ) or bool(self.downs)

    @property
    def has_messages(self) -> bool:
        return bool(self.commands or self.events)

    def __add__(self, other: Decision) -> Decision:
        """Both, in order: a result's events, then the failover step it moved on."""
        return Decision(
            commands=self.commands + other.commands,
            events=self.events + other.events,
            step=self.step or other.step,
            state=other.state or self.state,
            states={**self.states, **other.states},
            suspended={**self.suspended, **other.suspended},
            moves={**self.moves, **other.moves},
            failovers=self.failovers + other.failovers,
            ended=self.ended + other.ended,
            fences=self.fences + other.fences,
            fences_ended=self.fences_ended + other.fences_ended,
            downs={**self.downs, **other.downs},
            destinations={**self.destinations, **other.destinations},
        )

    # --- as a journal record: its messages, and whether they are out --------------------

    def to_value(self) -> dict[str, Any]:
        return {
            "commands": _commands.dump_python(list(self.commands), mode="json"),
            "events": _events.dump_python(list(self.events), mode="json"),
            "confirmed": self.confirmed,
        }

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> Decision:
        return cls(
            commands=tuple(_commands.validate_python(value["commands"])),
            events=tuple(_events.validate_python(value["events"])),
            confirmed=bool(value["confirmed"]),
        )


CONFIRMED = Decision(confirmed=True)
"""A decision whose messages the broker has (only the fact is kept)."""

_commands = TypeAdapter(list[RecoveryCommand])
_events = TypeAdapter(list[Event])


def recovery_command(
    *,
    fault_id: str,
    monitor: str,
    server: str,
    action: Action,
    issued_at: datetime,
    group: str | None = None,
    step: CommandStep | None = None,
    from_server: str | None = None,
    to_server: str | None = None,
    fence: bool = False,
    target: str | None = None,
    fence_action: FenceAction | None = None,
    attempt: str = "",
    resource: str | None = None,
    final_action: FinalAction | None = None,
    script: str | None = None,
    before_script: str | None = None,
    fault: FaultFacts | None = None,
) -> RecoveryCommand:
    """The one way to build a command. Its id derives from the fault, monitor, server, action,
    group and failover step, so a redelivered fault or a replay gives the same id again and
    agents can deduplicate. `fence`: the final action of a failover whose source did not
    confirm its stop (sent to the source itself: it has no BMC). A fence through a BMC
    (`Action.FENCE`) runs on a peer, `server`, against `target`; `attempt` tells its tries apart."""
    if action is Action.FAILOVER:
        assert group is not None and step is not None and to_server is not None
        kind: tuple[str, ...] = ("failover", group, step, to_server)
    elif action is Action.FENCE:
        assert target is not None and fence_action is not None
        kind = ("bmc", target, fence_action, attempt)
    elif fence:
        assert group is not None
        kind = ("fence", group)
    else:
        kind = (action.value, group or "", "")
    return RecoveryCommand(
        id=derived_id("command", fault_id, monitor, server, *kind),
        fault_id=fault_id,
        monitor=monitor,
        server=server,
        action=action,
        group=group,
        step=step,
        from_server=from_server,
        to_server=to_server,
        target=target,
        fence_action=fence_action,
        resource=resource,
        final_action=final_action,
        script=script,
        before_script=before_script,
        category=fault.category if fault else None,
        device=fault.device if fault else None,
        message=fault.message if fault else None,
        issued_at=issued_at,
    )
