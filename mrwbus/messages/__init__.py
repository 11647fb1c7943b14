"""The wire contract: every message that crosses the bus, as pydantic models.

One package, one concept per module (`base`, `commands`, `agents`, `control`, `bus`, `parsing`);
everything is imported from here.

Relays publish `FaultNotification`s; the service publishes `RecoveryCommand`s and `EventBatch`es;
node agents publish `CommandResult`s and `AgentReport`s. `docs/wire-contract.md` is checked
against these models by the test suite, so the two never drift apart.
"""

from __future__ import annotations

from mrwbus.messages.agents import (
    REPORT_REQUEST_WORD,
    AgentReport,
    CommandResult,
    Outcome,
    ReportReason,
    ReportRequest,
)
from mrwbus.messages.base import (
    CATEGORY_MAX_BYTES,
    KEYWORD_MAX_BYTES,
    MAX_BODY_BYTES,
    MAX_REPLY_BYTES,
    NAME_PATTERN,
    Action,
    Category,
    FenceAction,
    FinalAction,
    Keyword,
    M,
    MessageId,
    Name,
    PowerState,
    Timestamp,
    WireModel,
    derived_id,
    new_id,
    utc_now,
)
from mrwbus.messages.commands import (
    NO_MONITOR,
    CommandStep,
    Event,
    EventBatch,
    EventKind,
    FaultNotification,
    RecoveryCommand,
)
from mrwbus.messages.control import (
    ControlReply,
    ControlRequest,
    ControlVerb,
    DownRow,
    GroupRow,
    MonitorStatusRow,
    ServerRow,
    ShownStatus,
    StatusReport,
)
from mrwbus.messages.parsing import (
    describe_validation_error,
    json_object,
    parse_agent_message,
    parse_fault,
    parse_message,
)

__all__ = [
    "CATEGORY_MAX_BYTES",
    "KEYWORD_MAX_BYTES",
    "MAX_BODY_BYTES",
    "MAX_REPLY_BYTES",
    "NAME_PATTERN",
    "NO_MONITOR",
    "REPORT_REQUEST_WORD",
    "Action",
    "AgentReport",
    "Category",
    "CommandResult",
    "CommandStep",
    "ControlReply",
    "ControlRequest",
    "ControlVerb",
    "DownRow",
    "Event",
    "EventBatch",
    "EventKind",
    "FaultNotification",
    "FenceAction",
    "FinalAction",
    "GroupRow",
    "Keyword",
    "M",
    "MessageId",
    "MonitorStatusRow",
    "Name",
    "Outcome",
    "PowerState",
    "RecoveryCommand",
    "ReportReason",
    "ReportRequest",
    "ServerRow",
    "ShownStatus",
    "StatusReport",
    "Timestamp",
    "WireModel",
    "derived_id",
    "describe_validation_error",
    "json_object",
    "new_id",
    "parse_agent_message",
    "parse_fault",
    "parse_message",
    "utc_now",
]
