"""A recorded run without a broker: the service's calls on a `ClusterState`, in the service's
order, each input recorded by the very builders the service uses (`core.history`), with agents
that answer every command a second later and report every 5 s."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from mrwbus.config.model import ClusterConfig
from mrwbus.core import history
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
    RecoveryCommand,
    ReportReason,
    derived_id,
)
from mrwbus.service.answers import handle_control

TICK = timedelta(seconds=10)
REPORT_EVERY = timedelta(seconds=60)
CLEAR_EVERY = timedelta(hours=1)

DEVICES = {
    Category.NIC: ["eth0", "eth1"],
    Category.FC: ["host1", "host2"],
    Category.HA_SS: ["sdb"],
    Category.HA_AM: ["app"],
    Category.SPS: ["path0"],
    Category.HA_RS: ["mem"],
}


class RecordedRun:
    def __init__(
        self,
        config: ClusterConfig,
        start: datetime,
        seed: int = 7,
        gaps: tuple[float, ...] = (5, 60, 300, 900),
    ) -> None:
        self.gaps = gaps
        """Seconds between faults, one drawn at random each time."""
        self.config = config
        self.cluster = ClusterState.for_config(config)
        self.index = MonitorIndex(config)
        self.now = start
        self.records: list[dict[str, Any]] = [history.became_active(start)]
        self.random = random.Random(seed)
        self.answers: list[tuple[datetime, RecoveryCommand]] = []
        self._next_tick = start
        self._next_report = start
        self._next_clear = start + CLEAR_EVERY

    def run(self, faults: int) -> list[dict[str, Any]]:
        servers = list(self.config.servers)
        for number in range(faults):
            self.advance(timedelta(seconds=self.random.choice(self.gaps)))
            category = self.random.choice(list(DEVICES))
            fault = FaultNotification(
                id=f"fault-{number}",
                server=self.random.choice(servers),
                category=category,
                device=self.random.choice(DEVICES[category]),
                occurred_at=self.now,
                state="recovered" if self.random.random() < 0.05 else "error",
            )
            self.fault(fault)
        self.advance(timedelta(minutes=5))
        return self.records

    def fault(self, fault: FaultNotification) -> None:
        names = self.index.match(fault.server, fault.category, fault.device)
        self.records.append(history.fault_received(fault, f"relay-{fault.server}", names, self.now))
        for monitor in names:
            decision = self.cluster.handle_fault(monitor, fault, self.now)
            self.records.append(history.fault_decision(monitor, fault, decision, self.now))
            self._sent(decision)
        if not names:
            self.records.append(history.fault_decision(None, fault, Decision(), self.now))

    def advance(self, by: timedelta) -> None:
        until = self.now + by
        while True:
            due = min(
                [
                    self._next_tick,
                    self._next_report,
                    self._next_clear,
                    *(at for at, _ in self.answers[:1]),
                ]
            )
            if due > until:
                break
            self.now = due
            if self.answers and self.answers[0][0] == due:
                self._answer(self.answers.pop(0)[1])
            elif due == self._next_clear:
                self._next_clear += CLEAR_EVERY
                self._clear()
            elif due == self._next_report:
                self._next_report += REPORT_EVERY
                for server in self.config.servers:
                    self._report(server)
            else:
                self._next_tick += TICK
                decision = self.cluster.tick(self.now)
                if decision.has_messages:
                    self.records.append(history.tick_record(decision, self.now))
                self._sent(decision)
        self.now = until

    def _clear(self) -> None:
        """An operator clears the monitors in Error, as people do once the cause is fixed."""
        in_error = sorted(
            {m for (m, _), st in self.cluster.monitors.items() if st.status == "Error"}
        )
        for number, monitor in enumerate(in_error):
            request = ControlRequest(
                id=f"clear-{self.now.timestamp()}-{number}",
                verb=ControlVerb.CLEAR,
                monitor=monitor,
                by="operator test",
            )
            decision = handle_control(self.cluster, request, self.now)[1]
            self.records.append(history.control_record(request, "operator", decision, self.now))
            self._sent(decision)

    def _sent(self, decision: Decision) -> None:
        for command in decision.commands:
            self.answers.append((self.now + timedelta(seconds=1), command))
        self.answers.sort(key=lambda item: item[0])

    def _answer(self, command: RecoveryCommand) -> None:
        outcome = Outcome.FAILED if self.random.random() < 0.1 else Outcome.SUCCEEDED
        result = CommandResult(
            id=derived_id("result", command.id),
            command_id=command.id,
            server=command.server,
            outcome=outcome,
            finished_at=self.now,
        )
        decision = self.cluster.handle_result(result, self.now)
        sender = f"agent-{command.server}"
        self.records.append(history.result_record(result, sender, decision, self.now))
        self._sent(decision)

    def _report(self, server: str) -> None:
        groups = [g for g, where in self.cluster.view.placement.items() if where == server]
        report = AgentReport(
            id=f"report-{server}-{self.now.timestamp()}",
            server=server,
            active_groups=groups,
            reason=ReportReason.HEARTBEAT,
            heartbeat_interval=5,
            sent_at=self.now,
        )
        decision = self.cluster.handle_report(report, self.now)
        self.records.append(history.report_record(report, f"agent-{server}", decision, self.now))
        self._sent(decision)
