"""The wire contract: every message that crosses the bus, as pydantic models.

Relays publish `FaultNotification`s; the service publishes `RecoveryCommand`s and `Event`s;
node agents publish `CommandResult`s and `AgentReport`s. `docs/wire-contract.md` is checked
against these models by the test suite, so the two never drift apart.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from mrwbus.bus_messages import BusReport, DeadLetterNote, DeadLetterReplay
from mrwbus.errors import ContractError
from mrwbus.json_limits import scan

MAX_BODY_BYTES = 64 * 1024
"""Larger message bodies are refused before they are parsed."""

MAX_REPLY_BYTES = 64 * 1024 * 1024
"""A control reply comes from the service itself and lists every monitor on every server: a
status of 10,000 monitors is megabytes, not kilobytes."""

KEYWORD_MAX_BYTES = 1023
CATEGORY_MAX_BYTES = 32


class Category(StrEnum):
    """The fault categories the server management infrastructure sends."""

    NIC = "NIC"
    FC = "FC"
    HA_SS = "HA/SS"
    HA_AM = "HA/AM"
    HA_RS = "HA/RS"
    SPS = "SPS"

    @property
    def routing_key(self) -> str:
        """The routing-key word for this category: `HA/SS` -> `ha-ss`."""
        return self.value.lower().replace("/", "-")

    @classmethod
    def from_routing_key(cls, word: str) -> Category:
        for category in cls:
            if category.routing_key == word:
                return category
        raise ValueError(f"unknown category key {word!r}")


class Action(StrEnum):
    """What a monitor does on error; also the last word of a command's routing key."""

    SCRIPT = "script"
    RESTART = "restart"
    FAILOVER = "failover"
    FINAL_ACTION = "final_action"


class FinalAction(StrEnum):
    """What to do when the recovery ladder is exhausted or the final action was chosen."""

    NONE = "none"
    STOP_GROUP = "stop_group"
    STOP_CLUSTER_SERVICE = "stop_cluster_service"
    SHUTDOWN = "shutdown"
    REBOOT = "reboot"
    SYSRQ_PANIC = "sysrq_panic"
    KEEPALIVE_RESET = "keepalive_reset"
    KEEPALIVE_PANIC = "keepalive_panic"
    BMC_RESET = "bmc_reset"
    BMC_POWER_OFF = "bmc_power_off"
    BMC_POWER_CYCLE = "bmc_power_cycle"
    BMC_NMI = "bmc_nmi"

    @property
    def takes_server_down(self) -> bool:
        """True when the action removes the whole server from the cluster."""
        return self not in (FinalAction.NONE, FinalAction.STOP_GROUP)


def _max_utf8_bytes(limit: int) -> AfterValidator:
    def check(value: str) -> str:
        size = len(value.encode("utf-8"))
        if size > limit:
            raise ValueError(f"is {size} bytes, at most {limit} allowed")
        return value

    return AfterValidator(check)


def _rfc3339_text(value: object) -> object:
    # pydantic would read a bare number as a Unix time; the contract says RFC 3339 text.
    if isinstance(value, int | float):
        raise ValueError("must be an RFC 3339 time such as 2026-11-25T15:50:14Z, not a number")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]
"""An RFC 3339 time with its offset."""

NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
"""Server, group, resource and monitor names: they become routing-key words."""

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Keyword = Annotated[str, _max_utf8_bytes(KEYWORD_MAX_BYTES)]
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=200)]


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


_ID_NAMESPACE = uuid.UUID("7a3c4e8e-5b1d-4c55-9a07-0d7f2b0c6e11")


def derived_id(*parts: str) -> str:
    """A deterministic id: the same fault and step always give the same command id."""
    return str(uuid.uuid5(_ID_NAMESPACE, "\x1f".join(parts)))


class WireModel(BaseModel):
    """Base of every message: unknown fields are refused, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_body(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode("utf-8")


M = TypeVar("M", bound=WireModel)


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
    server: Name = Field(description="The server that must act.")
    action: Action = Field(description="restart, failover, final_action or script.")
    group: Name | None = Field(default=None, description="The failover group acted on.")
    resource: Name | None = Field(
        default=None, description="The group resource, if the target is one."
    )
    step: CommandStep | None = Field(default=None, description="Failover only: stop or start.")
    from_server: Name | None = Field(default=None, description="Failover only: the server left.")
    to_server: Name | None = Field(default=None, description="Failover only: the destination.")
    final_action: FinalAction | None = Field(default=None, description="For action final_action.")
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


NO_MONITOR = "_"
"""The monitor word of an event's routing key when no monitor is concerned."""


class Event(WireModel):
    """Published by the service to `mrwbus.events` with routing key `<kind>.<monitor>`."""

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


def json_object(body: bytes, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """A message body as a JSON object, or `ContractError` saying why it is not one.

    Whatever the body holds, nothing but `ContractError` comes out: a body nested 50,000
    deep (RecursionError) or a 5,000-digit number (ValueError) would otherwise escape the
    consumer and leave its message unacknowledged, holding a prefetch slot for ever."""
    if len(body) > max_bytes:
        raise ContractError(f"body is {len(body)} bytes, at most {max_bytes} allowed")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContractError(f"body is not valid UTF-8 (byte {exc.start})") from exc
    scan(text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(
            f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        raise ContractError("body is nested too deeply to be read") from exc
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise ContractError(f"body cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise ContractError("body must be a JSON object")
    return data


def parse_message(
    model: type[M],
    body: bytes,
    routing_key: str | None = None,
    *,
    max_bytes: int = MAX_BODY_BYTES,
) -> M:
    """THE parse of every wire input: the body as `model`, or `ContractError` saying why not.

    With `routing_key`, the message's own `routing_key` must equal it. Any problem at all
    (size, encoding, JSON, nesting depth, huge numbers, the schema) is a `ContractError`, so
    every consumer can dead-letter (or refuse) what it cannot read instead of stalling on it.
    """
    data = json_object(body, max_bytes)
    noun = _NOUNS.get(model.__name__, model.__name__)
    try:
        message = model.model_validate(data)
    except ValidationError as exc:
        raise ContractError(
            f"body breaks the {noun} schema: {describe_validation_error(exc)}"
        ) from exc
    except (RecursionError, ValueError, TypeError) as exc:
        raise ContractError(f"body breaks the {noun} schema: {exc}") from exc
    expected = getattr(message, "routing_key", None)
    if routing_key is not None and routing_key != expected:
        raise ContractError(
            f"routing key {routing_key!r} does not match the body, which says {expected!r}"
        )
    return message


_NOUNS = {
    "FaultNotification": "fault",
    "RecoveryCommand": "command",
    "CommandResult": "result",
    "AgentReport": "report",
    "ReportRequest": "report request",
    "ControlRequest": "control request",
}
"""How an error names the schema a body broke."""


def parse_fault(body: bytes, routing_key: str) -> FaultNotification:
    """Validate a fault notification off the wire, or raise `ContractError` saying what is wrong."""
    return parse_message(FaultNotification, body, routing_key)


def describe_validation_error(error: ValidationError) -> str:
    """A one-line summary of pydantic's errors: `device: is 2000 bytes...; id: Field required`."""
    parts = []
    for detail in error.errors()[:5]:
        where = ".".join(str(part) for part in detail["loc"]) or "body"
        parts.append(f"{where}: {detail['msg'].removeprefix('Value error, ')}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


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


class ServerRow(WireModel):
    server: str
    server_group: str | None = None  # a default: `to_body` leaves None out
    alive: bool
    agent_node: str | None = None
    """The broker node the server's agent said it is connected to, in its last report."""


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


def parse_agent_message(body: bytes, routing_key: str) -> CommandResult | AgentReport:
    """Validate a result or report from `mrwbus.results`, or raise `ContractError`."""
    server, _, word = routing_key.partition(".")
    model: type[CommandResult] | type[AgentReport]
    if word == "result":
        model = CommandResult
    elif word == "report":
        model = AgentReport
    else:
        raise ContractError(
            f"routing key {routing_key!r} is neither <server>.result nor <server>.report"
        )
    message = parse_message(model, body)
    if message.server != server:
        raise ContractError(
            f"routing key {routing_key!r} names another server than the body ({message.server!r})"
        )
    return message
