"""What node agents publish to `mrwbus.results` (`CommandResult`, `AgentReport`) and the
service's `ReportRequest` asking them to report."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import (
    Field,
    StringConstraints,
)

from mrwbus.messages.base import (
    MessageId,
    Name,
    PowerState,
    Timestamp,
    WireModel,
)

# --- node agents: results of commands and reports of state (`mrwbus.results`) --------------


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    REFUSED = "refused"


class CommandResult(WireModel):
    """Published by a node agent to `mrwbus.results` with routing key `<server>.result`."""

    id: MessageId = Field(
        description="Deterministic from the command id: a result sent again keeps it."
    )
    command_id: MessageId = Field(description="The command this is the result of.")
    server: Name = Field(description="The server whose agent carried the command out.")
    outcome: Outcome = Field(description="succeeded, failed, timed_out or refused.")
    detail: str = Field(default="", max_length=4096, description="What happened, for operators.")
    before_script_outcome: Outcome | None = Field(
        default=None, description="Set when the command had a before_script: how it went."
    )
    finished_at: Timestamp = Field(description="When the command finished.")
    power: PowerState | None = Field(
        default=None,
        description="A fence: the target's power as its BMC reported it afterwards, if read.",
    )

    @property
    def routing_key(self) -> str:
        return f"{self.server}.result"


class ReportReason(StrEnum):
    START = "start"
    CHANGE = "change"
    HEARTBEAT = "heartbeat"
    ASKED = "asked"


class AgentReport(WireModel):
    """Published by a node agent to `mrwbus.results` with routing key `<server>.report`:
    at start, after every change of its groups, on request, and periodically as a heartbeat."""

    id: MessageId = Field(description="Unique per report.")
    server: Name = Field(description="The agent's server; must match the routing key.")
    active_groups: list[Name] = Field(description="The groups active on this server now.")
    probed_groups: list[Name] = Field(
        default_factory=list,
        description="The groups a probe checked for this report (their state is a fact of the "
        "system); the others are as the agent's journal remembers them.",
    )
    reason: ReportReason = Field(description="Why it was sent.")
    heartbeat_interval: float = Field(
        gt=0, description="Seconds until the next heartbeat at the latest."
    )
    sent_at: Timestamp = Field(description="When the agent sent it.")
    node: str | None = Field(
        default=None,
        description="The broker node (host:port) the agent is connected to; shown by status.",
    )
    executor_notes: list[Annotated[str, StringConstraints(max_length=300)]] = Field(
        default_factory=list,
        max_length=20,
        description="What the agent's executor (Pacemaker) recovers by itself, e.g. a failed "
        "monitor; shown by status, never a fault.",
    )

    @property
    def routing_key(self) -> str:
        return f"{self.server}.report"


REPORT_REQUEST_WORD = "report"
"""A message on `mrwbus.commands` with routing key `<server>.report` asks that agent to report."""


class ReportRequest(WireModel):
    """Published by the service (after its own start) to `mrwbus.commands`, key `<server>.report`."""

    id: MessageId = Field(description="Unique per request.")
    server: Name = Field(description="The server whose agent must report.")
    asked_at: Timestamp = Field(description="When the service asked.")

    @property
    def routing_key(self) -> str:
        return f"{self.server}.{REPORT_REQUEST_WORD}"
