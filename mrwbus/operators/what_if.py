"""`mrwbus what-if`: what the recorded history would have done under another configuration.

The recorded inputs are replayed, in their order and each at the moment it was decided (`at`),
through the very calls the service makes (`MonitorIndex.match`, `ClusterState.handle_fault`,
`handle_result`, `handle_report`, `tick`, `service.answers.handle_control`), on a state built
for the new configuration:

- the state at the range's start is the one the new configuration reaches by replaying every
  record before it (the history's first record on, the same way, nothing of it reported): so
  the range starts where the new configuration would stand, and with the recorded
  configuration that is the recorded state;
- a command the new run sends that the history holds too (same id: same fault, monitor,
  server, action, group and step) gets its recorded result when that result comes; a command
  the history lacks gets an assumed result at once (`succeeded`, or as `--assume` says), and is
  reported as assumed; a recorded result of a command the new run never sent is not used;
- ticks are replayed when the service recorded one (it records those that decided something),
  and a replica becoming active restarts the clocks as it did.

Per fault, the commands it caused (its decision's, and those of the failover steps and fences
that followed from it) are compared, recorded against new, by action, server, group, step and
destination (ids and times aside). Pure: records and configurations in, a report out.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from mrwbus.config.model import ClusterConfig
from mrwbus.core.cluster import ClusterState
from mrwbus.core.decision import Decision
from mrwbus.core.matching import MonitorIndex
from mrwbus.messages import (
    AgentReport,
    Category,
    CommandResult,
    ControlRequest,
    ControlVerb,
    FaultNotification,
    Outcome,
    PowerState,
    RecoveryCommand,
    ReportReason,
    derived_id,
)
from mrwbus.operators.history_view import command_text
from mrwbus.service.answers import handle_control

HistoryRecord = dict[str, Any]
M = TypeVar("M", FaultNotification, CommandResult, AgentReport)
_ENUMS: dict[type[Any], tuple[tuple[str, type[Any]], ...]] = {
    FaultNotification: (("category", Category),),
    CommandResult: (
        ("outcome", Outcome),
        ("before_script_outcome", Outcome),
        ("power", PowerState),
    ),
    AgentReport: (("reason", ReportReason),),
}

_REPLAYED_VERBS = {ControlVerb.CLEAR, ControlVerb.SUSPEND, ControlVerb.RESUME, ControlVerb.PLACE}
"""Operators' requests that change the state (the others only read it, or act on the bus)."""


def _signature(command: dict[str, Any]) -> str:
    return command_text(command)


@dataclass
class FaultChange:
    fault_id: str
    at: str
    monitor: str
    server: str
    old: list[str]
    new: list[str]
    assumed: list[str]
    """New commands whose results were assumed, not recorded."""

    @property
    def kind(self) -> str:
        def word(commands: list[str]) -> str:
            return "+".join(sorted({text.split(" ")[0] for text in commands})) or "none"

        return f"{word(self.old)} -> {word(self.new)}"


@dataclass
class WhatIfReport:
    faults: int = 0
    """Faults received within the range."""
    changes: list[FaultChange] = field(default_factory=list)
    assumed_results: int = 0
    skipped_results: int = 0
    """Recorded results of commands the new configuration did not send."""

    def by_monitor(self) -> Counter[str]:
        return Counter(change.monitor for change in self.changes)

    def by_kind(self) -> Counter[str]:
        return Counter(change.kind for change in self.changes)


class Replay:
    def __init__(self, config: ClusterConfig, assume: Outcome, since: datetime | None) -> None:
        self.config = config
        self.assume = assume
        self.since = since
        self.cluster = ClusterState.for_config(config)
        self.index = MonitorIndex(config)
        self.recorded_ids: set[str] = set()
        self.issued: set[str] = set()
        self.old: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
        self.new: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
        self.assumed: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
        self.faults: dict[str, tuple[str, str]] = {}
        """Fault id -> (at, server), for those within the range."""
        self.received: dict[str, tuple[FaultNotification, set[str]]] = {}
        """Fault id -> the fault and the monitors it matches under the new configuration."""
        self.decided: set[tuple[str, str]] = set()
        self.report = WhatIfReport()
        self._in_range = since is None

    def run(self, records: list[HistoryRecord]) -> WhatIfReport:
        for record in records:
            for command in record.get("commands", ()):
                self.recorded_ids.add(command["id"])
        for record in records:
            at = datetime.fromisoformat(record["at"])
            if not self._in_range and self.since is not None and at >= self.since:
                self._in_range = True
            self._record(record, at)
        self._compare()
        return self.report

    def _record(self, record: HistoryRecord, now: datetime) -> None:
        kind = record["k"]
        if self._in_range:
            for command in record.get("commands", ()):
                self.old[(command["fault_id"], command["monitor"])].append(_signature(command))
        if kind == "fault":
            fault = _trusted(FaultNotification, record["fault"], "occurred_at")
            if self._in_range and fault.id not in self.faults:
                self.report.faults += 1
                self.faults[fault.id] = (record["at"], fault.server)
            if fault.server not in self.config.servers:
                return  # dead-lettered by the service under this configuration
            matched = self.index.match(fault.server, fault.category, fault.device)
            self.received[fault.id] = (fault, set(matched))
            recorded = set(record.get("monitors") or ())
            for monitor in matched:
                if monitor not in recorded:  # matched only now: decided as it arrives
                    self._decide(monitor, fault, now)
        elif kind == "decision":
            # A monitor that matched then too decides where and when its actor did.
            fault_id: str = record["fault_id"]
            decider: str | None = record.get("monitor")
            if decider is not None and decider in self.received.get(fault_id, (None, ()))[1]:
                self._decide(decider, self.received[fault_id][0], now)
        elif kind == "result":
            result = _trusted(CommandResult, record["result"], "finished_at")
            if result.command_id not in self.issued:
                self.report.skipped_results += 1
                return
            self._decided(self.cluster.handle_result(result, now), now)
        elif kind == "report":
            report = _trusted(AgentReport, record["report"], "sent_at")
            self._decided(self.cluster.handle_report(report, now), now)
        elif kind == "tick":
            self._decided(self.cluster.tick(now), now)
        elif kind == "control":
            request = ControlRequest.model_validate(record["request"])
            if request.verb in _REPLAYED_VERBS:
                self._decided(handle_control(self.cluster, request, now)[1], now)
        elif kind == "active":
            self.cluster.restart_clocks(now)

    def _decide(self, monitor: str, fault: FaultNotification, now: datetime) -> None:
        if (fault.id, monitor) in self.decided:
            return  # a redelivered fault is decided once, as by the actor
        self.decided.add((fault.id, monitor))
        self._decided(self.cluster.handle_fault(monitor, fault, now), now)

    def _decided(self, decision: Decision, now: datetime) -> None:
        waiting: list[RecoveryCommand] = []
        for command in decision.commands:
            self.issued.add(command.id)
            key = (command.fault_id, command.monitor)
            if self._in_range:
                self.new[key].append(command_text(command.model_dump(mode="json")))
            if command.id not in self.recorded_ids:
                waiting.append(command)
        for command in waiting:  # answered at once, as assumed
            result = CommandResult(
                id=derived_id("what-if", command.id),
                command_id=command.id,
                server=command.server,
                outcome=self.assume,
                detail="assumed by what-if",
                finished_at=now,
            )
            if self._in_range:
                self.report.assumed_results += 1
                self.assumed[(command.fault_id, command.monitor)].append(
                    command_text(command.model_dump(mode="json"))
                )
            self._decided(self.cluster.handle_result(result, now), now)

    def _compare(self) -> None:
        for key in sorted(self.old.keys() | self.new.keys(), key=self._order):
            fault_id, monitor = key
            if fault_id not in self.faults:
                continue  # a fault from before the range (its failover went on within it)
            old, new = self.old.get(key, []), self.new.get(key, [])
            if old != new:
                at, server = self.faults[fault_id]
                change = FaultChange(
                    fault_id, at, monitor, server, old, new, self.assumed.get(key, [])
                )
                self.report.changes.append(change)

    def _order(self, key: tuple[str, str]) -> tuple[str, str]:
        return (self.faults.get(key[0], ("", ""))[0], key[1])


def _trusted(model: type[M], value: dict[str, Any], time_field: str) -> M:
    """A recorded input, as the service validated it when it arrived: built without validating
    it again (a tenth of a replay's time went there), its time parsed."""
    fields = dict(value)
    fields[time_field] = datetime.fromisoformat(fields[time_field])
    for name, kind in _ENUMS.get(model, ()):
        if name in fields:
            fields[name] = kind(fields[name])
    return model.model_construct(**fields)


def what_if(
    config: ClusterConfig,
    records: Iterable[HistoryRecord],
    *,
    since: datetime | None = None,
    assume: Outcome = Outcome.SUCCEEDED,
) -> WhatIfReport:
    """Replay `records` (the history, oldest first) under `config`; the faults from `since` on
    are compared and reported, those before only build the state the range starts from."""
    return Replay(config, assume, since).run(list(records))


def render_what_if(report: WhatIfReport, assume: Outcome) -> str:
    lines = []
    for change in report.changes:
        old = "; ".join(change.old) or "none"
        new = "; ".join(change.new) or "none"
        lines.append(f"{change.at}  {change.monitor} on {change.server}  fault {change.fault_id}")
        lines.append(f"    {old}  ->  {new}")
        if change.assumed:
            lines.append(f"    assumed {assume.value}: " + "; ".join(change.assumed))
    lines.append(
        f"{report.faults} faults replayed, {len(report.changes)} decisions changed, "
        f"{report.assumed_results} results assumed {assume.value}, "
        f"{report.skipped_results} recorded results unused"
    )
    for monitor, count in sorted(report.by_monitor().items()):
        lines.append(f"  monitor {monitor}: {count} changed")
    for kind, count in sorted(report.by_kind().items()):
        lines.append(f"  {kind}: {count}")
    return "\n".join(lines)
