"""Operators' requests to the running service and its replies (request/reply on
`mrwbus.control`): the verbs, the status report and its rows."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import (
    Field,
)

from mrwbus.messages.base import (
    Category,
    FenceAction,
    MessageId,
    Name,
    Timestamp,
    WireModel,
)
from mrwbus.messages.bus import BusReport, DeadLetterNote, DeadLetterReplay

# --- operators' requests to the running service (request/reply on `mrwbus.control`) ---------


class ControlVerb(StrEnum):
    PING = "ping"
    STATUS = "status"
    CLEAR = "clear"
    SUSPEND = "suspend"
    RESUME = "resume"
    PLACE = "place"
    DEAD_LETTERS = "dead_letters"
    REPLAY = "replay"
    FENCE = "fence"


class ControlRequest(WireModel):
    """Published to the exchange `mrwbus.control` with routing key `<verb>`, with `reply_to`
    and `correlation_id` set. The routing key lets the broker's topic permissions say who may
    send which verb (docs/security.md)."""

    id: MessageId = Field(description="Unique; also the correlation id of the reply.")
    verb: ControlVerb = Field(description="What to do.")
    monitor: Name | None = Field(default=None, description="clear, suspend, resume: the monitor.")
    server: Name | None = Field(
        default=None,
        description="clear: only on this server. place: where the group runs (none: nowhere).",
    )
    group: Name | None = Field(default=None, description="place: the group whose server is set.")
    reason: str = Field(
        default="", max_length=500, description="place: why, for the event log (required)."
    )
    all: bool = Field(default=False, description="suspend, resume: every monitor.")
    reset_counts: bool = Field(default=False, description="clear: also set the counts to zero.")
    by: str = Field(default="operator", max_length=200, description="Who asked, for the event log.")
    dead_letters: DeadLetterNote | None = Field(
        default=None, description="dead_letters: what the operator did, to record as an event."
    )
    replay: DeadLetterReplay | None = Field(
        default=None, description="replay: which dead letters the service replays."
    )
    fence_action: FenceAction | None = Field(
        default=None, description="fence: off, on, reboot or status of `server` through its BMC."
    )
    force: bool = Field(
        default=False, description="fence: even if `server` is the last healthy server."
    )

    @property
    def routing_key(self) -> str:
        return self.verb.value


ShownStatus = Literal["Normal", "Error", "Suspended", "Offline"]


class MonitorStatusRow(WireModel):
    monitor: str
    server: str
    category: Category
    status: ShownStatus
    faults: int
    restarts: int
    failovers: int
    final_action_taken: bool
    last_fault_at: Timestamp | None = None
    last_device: str | None = None
    last_message: str | None = None


class GroupRow(WireModel):
    group: str
    server: str | None = None  # a default: `to_body` leaves None out (a stopped group)


class DownRow(WireModel):
    how: str
    """`fenced (off)`, `final action shutdown`, ..."""
    at: Timestamp
    by: str
    """The server whose agent fenced it, or the monitor whose final action took it down."""


class ServerRow(WireModel):
    server: str
    server_group: str | None = None  # a default: `to_body` leaves None out
    alive: bool
    agent_node: str | None = None
    """The broker node the server's agent said it is connected to, in its last report."""
    down: DownRow | None = None
    """Set while the server is fenced or taken down, until its agent reports after it came back."""
    fencing: str | None = None
    """Set while a fence of the server is under way or waits to be tried again: its state."""
    executor_notes: list[str] = []
    """What the server's executor (Pacemaker) recovered by itself, per its agent's last report."""


class StatusReport(WireModel):
    monitors: list[MonitorStatusRow]
    groups: list[GroupRow]
    servers: list[ServerRow]
    service_node: str | None = None
    """The broker node of the replica that answered."""
    bus: BusReport | None = None


class ControlReply(WireModel):
    id: MessageId = Field(description="The request's id.")
    ok: bool = Field(description="False when the request was refused.")
    error: str | None = Field(default=None, description="Why it was refused, one sentence.")
    text: str = Field(default="", description="What was done, one sentence.")
    status: StatusReport | None = Field(
        default=None, description="status: the whole status report."
    )
