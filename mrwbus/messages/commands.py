"""What crosses the bus on the way from a fault to its recovery: `FaultNotification`s from the
relays (`mrwbus.faults`), `RecoveryCommand`s to the agents (`mrwbus.commands`) and the service's
`Event`s (`mrwbus.events`)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    StringConstraints,
)

from mrwbus.messages.base import (
    Action,
    Category,
    FenceAction,
    FinalAction,
    Keyword,
    MessageId,
    Name,
    Timestamp,
    WireModel,
)


class FaultNotification(WireModel):
    """Published by a driver relay to `mrwbus.faults` with routing key `<server>.<category key>`."""

    id: MessageId = Field(description="Unique per notification, chosen by the relay.")
    server: Name = Field(description="The server whose driver saw the fault.")
    category: Category = Field(description="NIC, FC, HA/SS, HA/AM, HA/RS or SPS.")
    device: Keyword = Field(description="The device that failed, e.g. eth0; at most 1023 bytes.")
    message: Annotated[str, StringConstraints(max_length=4096)] = Field(
        default="", description="Free text from the driver, for operators."
    )
    occurred_at: Timestamp = Field(description="When the driver saw it, RFC 3339.")
    state: Literal["error", "recovered"] = Field(
        default="error",
        description="`recovered` announces the device works again; it never causes a command.",
    )

    @property
    def routing_key(self) -> str:
        return f"{self.server}.{self.category.routing_key}"


class CommandStep(StrEnum):
    """The two halves of a failover."""

    STOP = "stop"
    START = "start"


class RecoveryCommand(WireModel):
    """Published by the service to `mrwbus.commands` with routing key `<server>.<action>`."""

    id: MessageId = Field(description="Deterministic from the fault, monitor, server and step.")
    fault_id: MessageId = Field(description="The notification that caused it.")
    monitor: Name = Field(description="The monitor resource that decided it.")
    server: Name = Field(description="The server whose agent carries it out.")
    action: Action = Field(description="restart, failover, final_action, script or fence.")
    target: Name | None = Field(
        default=None,
        description="The server acted on, when it is not `server`: for a fence, the server "
        "whose BMC the agent drives (never the agent's own).",
    )
    group: Name | None = Field(default=None, description="The failover group acted on.")
    resource: Name | None = Field(
        default=None, description="The group resource, if the target is one."
    )
    step: CommandStep | None = Field(default=None, description="Failover only: stop or start.")
    from_server: Name | None = Field(default=None, description="Failover only: the server left.")
    to_server: Name | None = Field(default=None, description="Failover only: the destination.")
    final_action: FinalAction | None = Field(
        default=None,
        description="For action final_action; for a fence, the BMC final action it carries out.",
    )
    fence_action: FenceAction | None = Field(
        default=None, description="For action fence: off, on, reboot, status or diag."
    )
    script: str | None = Field(default=None, description="For action script: what to run.")
    before_script: str | None = Field(default=None, description="Run before the action itself.")
    category: Category | None = Field(
        default=None, description="The fault's category, for handlers (MRWBUS_CATEGORY)."
    )
    device: Keyword | None = Field(
        default=None, description="The fault's device, for handlers (MRWBUS_DEVICE)."
    )
    message: Annotated[str, StringConstraints(max_length=4096)] | None = Field(
        default=None, description="The driver's message of the fault (MRWBUS_MESSAGE)."
    )
    issued_at: Timestamp = Field(description="When the service issued it, RFC 3339.")

    @property
    def routing_key(self) -> str:
        return f"{self.server}.{self.action.value}"

    @property
    def acted_on(self) -> str:
        """The server the command concerns: its target, or the server that runs it."""
        return self.target or self.server


class EventKind(StrEnum):
    """The first word of an event's routing key `<kind>.<monitor>`."""

    FAULT = "fault"  # a fault was received and matched, or recorded while in Error
    UNMATCHED = "unmatched"  # a fault matched no monitor
    STATUS = "status"  # a monitor's status changed on a server
    COMMAND = "command"  # a recovery command was issued
    NOT_TAKEN = "not_taken"  # a recovery was not taken, with why
    COUNTS = "counts"  # counts were reset or expired
    RECOVERY = "recovery"  # a recovery notice arrived
    CONTROL = "control"  # an operator cleared, suspended or resumed a monitor
    RESULT = "result"  # an agent reported a command's outcome, or a failover moved on
    SERVER = "server"  # a server's agent went silent or came back
    DEAD_LETTER = "dead_letter"  # an operator listed, replayed or purged dead letters
    REFUSED = "refused"  # a message from a sender not allowed to send it was dead-lettered
    FENCE = "fence"  # a server was fenced through its BMC, or could not be


NO_MONITOR = "_"
"""The monitor word of an event's routing key when no monitor is concerned."""


class Event(WireModel):
    """One thing the service decided or saw, with routing key `<kind>.<monitor>`; travels in an
    `EventBatch` on `mrwbus.events`."""

    id: MessageId = Field(description="Deterministic from its cause: an event sent again keeps it.")
    kind: EventKind = Field(description="The first word of the routing key.")
    code: str = Field(description="A stable message id, e.g. MRW-201, for alerting rules.")
    text: str = Field(description="One sentence for operators.")
    monitor: str = Field(default=NO_MONITOR, description="The monitor concerned, `_` when none.")
    server: Name | None = Field(
        default=None, description="The server the monitor watched when it happened."
    )
    fault_id: MessageId | None = Field(
        default=None, description="The fault that caused it, if any."
    )
    command_id: MessageId | None = Field(default=None, description="The command concerned, if any.")
    group: Name | None = Field(default=None, description="The group concerned, if any.")
    detail: dict[str, Any] = Field(
        default_factory=dict, description="The facts the text was made from."
    )
    at: Timestamp = Field(description="When the service decided it.")

    @property
    def routing_key(self) -> str:
        return f"{self.kind.value}.{self.monitor}"


class EventBatch(WireModel):
    """Published by the service to `mrwbus.events`: the events of one decision, in order, as
    one message (a first fault's three events cost one publish, not three).

    Routed by its first event's key `<kind>.<monitor>`, and by every other event's key through
    the `BCC` header, so a queue bound to any of them receives the batch once; a consumer keeps
    the events its own binding asked for (`EventBatch.matching`)."""

    id: MessageId = Field(description="The first event's id: a batch sent again keeps it.")
    events: list[Event] = Field(min_length=1, description="The decision's events, in order.")

    @classmethod
    def of(cls, events: list[Event]) -> EventBatch:
        """A batch of the service's events (the events themselves are not validated again)."""
        return cls(id=events[0].id, events=events)

    @property
    def routing_key(self) -> str:
        return self.events[0].routing_key

    @property
    def other_routing_keys(self) -> list[str]:
        """The `BCC` header: every other event's key, once each."""
        first = self.routing_key
        return list(dict.fromkeys(e.routing_key for e in self.events if e.routing_key != first))

    def matching(self, kind: str | None = None, monitor: str | None = None) -> list[Event]:
        """The events a binding `<kind or *>.<monitor or *>` asked for."""
        return [
            event
            for event in self.events
            if (kind is None or event.kind.value == kind)
            and (monitor is None or event.monitor == monitor)
        ]
