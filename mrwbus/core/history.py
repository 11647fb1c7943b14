"""What the history stream holds: one record per input the service decided on, built here.

A record is a plain JSON object (docs/history.md, "The stream's format"): a fault as received
with who sent it (`fault`), each matched monitor's decision on it (`decision`), every agent's
result (`result`) and report (`report`), an operator's request (`control`), a tick that decided
something (`tick`) and the moment a replica became active (`active`). Each carries `at`, the
`now` the core decided with, so `what-if` replays it at the same moment. Decision records carry
their commands and events as the wire has them (commands without the fault's own facts, which
the `fault` record holds once).

Pure: values in, dictionaries out; the writer (`bus.history_stream`) only encodes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mrwbus.core.decision import Decision
from mrwbus.messages import (
    AgentReport,
    CommandResult,
    ControlRequest,
    Event,
    FaultNotification,
    RecoveryCommand,
)

HistoryRecord = dict[str, Any]
"""One record of the history stream (see the module docstring)."""

KINDS = ("fault", "decision", "result", "report", "control", "tick", "active")

_COMMAND_REPEATS = {"issued_at", "category", "device", "message"}
"""A command's fields the fault record (or `at`) already holds."""


def _at(now: datetime) -> str:
    return now.isoformat()


def command_value(command: RecoveryCommand) -> dict[str, Any]:
    return command.model_dump(mode="json", exclude_none=True, exclude=_COMMAND_REPEATS)


def event_value(event: Event) -> dict[str, Any]:
    value = event.model_dump(mode="json", exclude_none=True, exclude={"at"})
    if not value.get("detail"):
        value.pop("detail", None)
    return value


def _messages(decision: Decision) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if decision.commands:
        found["commands"] = [command_value(command) for command in decision.commands]
    if decision.events:
        found["events"] = [event_value(event) for event in decision.events]
    return found


def fault_received(
    fault: FaultNotification, sender: str | None, monitors: Sequence[str], now: datetime
) -> HistoryRecord:
    """A fault as it arrived, who sent it (the broker-verified user) and the monitors it matched."""
    return {
        "k": "fault",
        "at": _at(now),
        "fault": fault.model_dump(mode="json"),
        "sender": sender,
        "monitors": list(monitors),
    }


def fault_decision(
    monitor: str | None, fault: FaultNotification, decision: Decision, now: datetime
) -> HistoryRecord:
    """One monitor's decision on a fault: the ladder step (or why none), the monitor's state
    after it, its commands and events. `monitor` None: the fault matched no monitor."""
    record: HistoryRecord = {
        "k": "decision",
        "at": _at(now),
        "fault_id": fault.id,
        "monitor": monitor,
        "server": fault.server,
        "category": fault.category.value,
    }
    if decision.step is not None:
        record["step"] = decision.step.text
        record["taken"] = decision.step.taken
    if decision.state is not None:
        state = decision.state
        record["status"] = state.status.value
        record["restarts"] = state.restarts
        record["failovers"] = state.failovers
    record.update(_messages(decision))
    return record


def result_record(
    result: CommandResult, sender: str | None, decision: Decision, now: datetime
) -> HistoryRecord:
    return _input_record("result", result, sender, decision, now)


def report_record(
    report: AgentReport, sender: str | None, decision: Decision, now: datetime
) -> HistoryRecord:
    return _input_record("report", report, sender, decision, now)


def control_record(
    request: ControlRequest, sender: str | None, decision: Decision, now: datetime
) -> HistoryRecord:
    return _input_record("control", request, sender, decision, now, key="request")


def _input_record(
    kind: str,
    message: CommandResult | AgentReport | ControlRequest,
    sender: str | None,
    decision: Decision,
    now: datetime,
    *,
    key: str | None = None,
) -> HistoryRecord:
    """An input as received, who sent it, and what it decided."""
    return {
        "k": kind,
        "at": _at(now),
        key or kind: message.model_dump(mode="json", exclude_none=True),
        "sender": sender,
        **_messages(decision),
    }


def tick_record(decision: Decision, now: datetime) -> HistoryRecord:
    return {"k": "tick", "at": _at(now), **_messages(decision)}


def became_active(now: datetime) -> HistoryRecord:
    """A replica became active: its clocks restarted (`ClusterState.restart_clocks`)."""
    return {"k": "active", "at": _at(now)}


def fault_ids(records: Iterable[HistoryRecord]) -> list[str]:
    """The faults received in `records`, in order (the index of the stream)."""
    return [record["fault"]["id"] for record in records if record["k"] == "fault"]


DEFAULT_KINDS = frozenset({"fault", "decision", "result", "control", "tick", "active"})
"""What a listing shows unless asked: reports only when they decided something (a heartbeat
every few seconds per server would bury the rest)."""


@dataclass(frozen=True)
class HistoryFilter:
    """Which records to show; every criterion given must hold (any of a record's commands or
    events may satisfy it)."""

    monitor: str | None = None
    server: str | None = None
    group: str | None = None
    category: str | None = None
    code: str | None = None
    outcome: str | None = None
    kinds: frozenset[str] = field(default=DEFAULT_KINDS)

    def __call__(self, record: HistoryRecord) -> bool:
        kind = record.get("k")
        messages = [*record.get("commands", ()), *record.get("events", ())]
        if kind not in self.kinds and not (kind == "report" and messages):
            return False
        subject = record.get("fault") or record.get("result") or record.get("report") or {}
        checks: tuple[tuple[str | None, str, list[Any]], ...] = (
            (self.monitor, "monitor", [record.get("monitor"), *(record.get("monitors") or ())]),
            (self.server, "server", [record.get("server"), subject.get("server")]),
            (self.group, "group", []),
            (self.category, "category", [record.get("category"), subject.get("category")]),
            (self.code, "code", []),
            (self.outcome, "outcome", [subject.get("outcome")]),
        )
        for wanted, key, own in checks:
            if wanted is None:
                continue
            if wanted not in own and all(item.get(key) != wanted for item in messages):
                return False
        return True
