"""The whole cluster's state as the service sees it, and the operations that change it.

Every change goes through a pure decision (`core.recovery`) and is applied here in one step,
so the service, `simulate` and the tests all drive the same code.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from mrwbus.config.model import ClusterConfig
from mrwbus.core import events
from mrwbus.core.decision import Decision
from mrwbus.core.downed import ServerDown, follow_downed_server, took_server_down
from mrwbus.core.failover import FailoverRules, failover_command
from mrwbus.core.fencing import ANSWER_GRACE, Fencing, silent_server_fence
from mrwbus.core.monitor import MonitorServerState, Status
from mrwbus.core.placement import ClusterView
from mrwbus.core.progress import Down, FailoverInProgress, FenceIncident, Phase
from mrwbus.core.recovery import Situation, decide_fault, repeats_summary
from mrwbus.core.reports import learn_from_report
from mrwbus.core.results import result_events, wrong_server_event
from mrwbus.messages import (
    Action,
    AgentReport,
    CommandResult,
    CommandStep,
    Event,
    FaultNotification,
    Outcome,
    RecoveryCommand,
)

Key = tuple[str, str]
"""(monitor, server)"""

REMEMBERED_COMMANDS = 10_000
"""Commands remembered for matching their results to them."""


@dataclass
class ClusterState:
    config: ClusterConfig
    view: ClusterView
    monitors: dict[Key, MonitorServerState]
    suspended: set[str]
    protect_last_healthy_server: bool = True
    failovers: dict[str, FailoverInProgress] = field(default_factory=dict)
    """Failovers in progress, by group."""
    fences: dict[str, FenceIncident] = field(default_factory=dict)
    """Fences under way or waiting to be tried again, by the server fenced."""
    issued: OrderedDict[str, RecoveryCommand] = field(default_factory=OrderedDict)
    agent_nodes: dict[str, str] = field(default_factory=dict)
    """The broker node each agent last reported; for status only, never journaled."""
    executor_notes: dict[str, list[str]] = field(default_factory=dict)
    """What each server's executor (Pacemaker) recovers by itself, as last reported; shown only."""

    @classmethod
    def initial(
        cls, config: ClusterConfig, *, protect_last_healthy_server: bool = True
    ) -> ClusterState:
        return cls(
            config=config,
            view=ClusterView.initial(config),
            monitors={
                (name, server): MonitorServerState()
                for name in config.monitors
                for server in config.monitored_servers(name)
            },
            suspended=set(),
            protect_last_healthy_server=protect_last_healthy_server,
        )

    @classmethod
    def for_config(cls, config: ClusterConfig) -> ClusterState:
        return cls.initial(
            config, protect_last_healthy_server=config.service.protect_last_healthy_server
        )

    def __post_init__(self) -> None:
        self.dirty: set[Key] = set()
        """Monitor states changed since the journal last took them (`core.records`)."""
        self.reindex()

    def reindex(self) -> None:
        """Count again what the monitor states say (servers in Error, monitors to re-arm or to
        summarise): after the states were set from outside, a journal's replay or `simulate`."""
        self._errors = Counter(
            server for (_, server), st in self.monitors.items() if st.status is Status.ERROR
        )
        self._error_servers: dict[str, set[str]] = {}
        """monitor -> the servers it is in Error on (`exclude_destinations: same_monitor`)."""
        self._rearming: set[Key] = set()
        """Monitors in Error whose recovery succeeded and that re-arm (`rearm_after`)."""
        self._unreported: set[Key] = set()
        """Monitor states with faults in Error that no event reported yet (`tick` sums them)."""
        for key, state in self.monitors.items():
            self._index(key, state)

    # --- queries ------------------------------------------------------------------------

    def servers_in_error(self) -> set[str]:
        return {server for server, count in self._errors.items() if count > 0}

    def unhealthy_for(self, monitor: str) -> set[str]:
        """The servers no failover of `monitor` may go to, and that do not count as healthy
        for its final action: by `service.exclude_destinations`."""
        if self.config.service.exclude_destinations == "same_monitor":
            return set(self._error_servers.get(monitor, ()))
        return self.servers_in_error()

    def state_of(self, monitor: str, server: str) -> MonitorServerState:
        return self.monitors[(monitor, server)]

    def servers_of(self, monitor: str) -> list[str]:
        return [server for (name, server) in self.monitors if name == monitor]

    # --- changes ------------------------------------------------------------------------

    def handle_fault(self, monitor: str, fault: FaultNotification, now: datetime) -> Decision:
        """Decide what a fault matched to `monitor` does, and apply it."""
        situation = Situation(
            view=self.view,
            servers_in_error=self.unhealthy_for(monitor),
            suspended=monitor in self.suspended,
            protect_last_healthy_server=self.protect_last_healthy_server,
            rule=self.config.service.exclude_destinations,
            fence=self.request_fence,
        )
        decision = decide_fault(
            self.config, monitor, fault, self.state_of(monitor, fault.server), situation, now
        )
        self.apply(decision, (monitor, fault.server))
        return decision

    def apply(self, decision: Decision, key: Key | None = None) -> Decision:
        """Apply a decision in one step; `key`: the (monitor, server) whose state it decided."""
        if decision.state is not None:
            assert key is not None
            self._set(*key, decision.state)
        for (monitor, server), state in decision.states.items():
            self._set(monitor, server, state)
        for monitor, suspended in decision.suspended.items():
            if suspended:
                self.suspended.add(monitor)
            else:
                self.suspended.discard(monitor)
        for progress in decision.failovers:
            self.failovers[progress.group] = progress
            self.view.moving.add(progress.group)
        for group in decision.ended:
            del self.failovers[group]
            self.view.moving.discard(group)
        for group, where in decision.moves.items():
            self.view.move(group, where)
        for incident in decision.fences:
            self.fences[incident.target] = incident
        for server in decision.fences_ended:
            self.fences.pop(server, None)
        for server, down in decision.downs.items():
            if down is None:
                self.view.down.pop(server, None)
            else:
                self.view.down[server] = down
                self.view.alive.discard(server)
        self._remember(decision.commands)
        return decision

    # --- fencing (`core.fencing`) ---------------------------------------------------------

    def fencing(self) -> Fencing:
        return Fencing(self.config, self.view, self.servers_in_error(), self.failovers)

    def request_fence(self, incident: FenceIncident, now: datetime) -> Decision:
        """Start a fence (or join the one under way for its server); not applied yet."""
        return self.fencing().start(incident, now, self.fences.get(incident.target))

    def _fence_results(self, result: CommandResult, now: datetime) -> Decision:
        decision = Decision()
        for incident in list(self.fences.values()):
            if incident.awaiting == result.command_id and incident.fencer == result.server:
                decision += self.apply(self.fencing().on_result(incident, result, now))
        return decision

    def _silence(self, server: str, now: datetime) -> Decision:
        """A server fell silent: fence it if it held groups and can be fenced, or say nobody
        can prove it stopped."""
        found = silent_server_fence(self.config, self.view, server, now)
        if found is None:
            return Decision()
        if isinstance(found, Event):
            return Decision(events=(found,))
        return self.apply(self.request_fence(found, now))

    def handle_result(self, result: CommandResult, now: datetime) -> Decision:
        """An agent's result: an event, and the next step of a failover waiting for it."""
        found: list[Event] = []
        command = self.issued.get(result.command_id) or self._awaited(result.command_id)
        if command is not None and command.server != result.server:
            # Only the server a command was sent to can say how it went: another server's
            # "stopped" must never start a group elsewhere while its source still runs it.
            return Decision(events=(wrong_server_event(command, result, now),))
        found += result_events(command, result, now)
        decision = Decision(events=tuple(found))
        for progress in list(self.failovers.values()):
            if progress.awaiting == result.command_id:
                decision += self.apply(
                    self._rules(progress.monitor).on_result(progress, result, now)
                )
        decision += self._fence_results(result, now)
        if command is not None and result.outcome is Outcome.SUCCEEDED:
            self._recovered(command, now)
            if took_server_down(command):
                decision += self._took_down(command, now)
        return decision

    def _took_down(self, command: RecoveryCommand, now: datetime) -> Decision:
        """A final action took its server down: no destination until it reports again, and
        its groups follow (`move_groups_after_final_action`)."""
        down = ServerDown.by_final_action(command, self.config)
        gone = Down(how=f"final action {down.how}", at=now, by=command.monitor)
        decision = self.apply(Decision(downs={down.server: gone}))
        monitor = self.config.monitors.get(command.monitor)
        if monitor is None or not monitor.recovery.move_groups_after_final_action:
            return decision
        return decision + self.apply(
            follow_downed_server(
                self.config, self.view, down, self.unhealthy_for(command.monitor), now
            )
        )

    def _recovered(self, command: RecoveryCommand, now: datetime) -> None:
        """A recovery succeeded: its monitor may re-arm (`rearm_after`)."""
        if command.action is Action.FAILOVER:
            if command.step is not CommandStep.START or command.from_server is None:
                return  # a failover has succeeded only once its start did
            key = (command.monitor, command.from_server)
        else:
            key = (command.monitor, command.acted_on)
        if key in self.monitors:
            self._set(*key, self.monitors[key].recovered(now))

    def result_refusal(self, result: CommandResult) -> str | None:
        """Why `result` is not believed: it comes from another server than the one its command
        (one issued, or the step a failover awaits) was sent to; None when it may be taken."""
        command = self.issued.get(result.command_id) or self._awaited(result.command_id)
        if command is None or command.server == result.server:
            return None
        return (
            f"the result of command {result.command_id} came from {result.server!r}, "
            f"but the command was sent to {command.server!r}"
        )

    def handle_report(self, report: AgentReport, now: datetime) -> Decision:
        """An agent's report: it is alive, and these groups run on its server."""
        found = learn_from_report(self.config, self.view, report, now)
        incident = self.fences.get(report.server)
        if incident is not None and incident.cause == "silent" and report.server in self.view.alive:
            # It answers again: nothing left to prove. A fence asked of a peer already may
            # still run; its result then finds no incident and changes nothing.
            del self.fences[report.server]
        fresh = now - min(now, report.sent_at) <= self.config.service.heartbeat_timeout
        if report.node and fresh and report.server in self.config.servers:
            self.agent_nodes[report.server] = report.node  # shown by status: which broker node
        if fresh and report.server in self.config.servers:
            self.executor_notes[report.server] = list(report.executor_notes)
        return Decision(events=tuple(found))

    def tick(self, now: datetime) -> Decision:
        """The passing of time: failover deadlines, and agents that fell silent."""
        found: list[Event] = []
        timeout = self.config.service.heartbeat_timeout
        silenced = sorted(self.view.silent_servers(now, timeout) & self.view.alive)
        for server in silenced:
            self.view.alive.discard(server)
            seen = self.view.last_seen[server].isoformat()
            found.append(
                events.SERVER_SILENT.make(at=now, cause=seen, server=server, timeout=str(timeout))
            )
        found += self._rearm(now)
        found += self._summarise_repeats(now)
        decision = Decision(events=tuple(found))
        for server in silenced:
            decision += self._silence(server, now)
        awaited_fences = {incident.id for incident in self.fences.values()}
        for progress in list(self.failovers.values()):
            if progress.phase is Phase.FENCING and progress.awaiting in awaited_fences:
                continue  # its fence drives it
            decision += self.apply(self._rules(progress.monitor).on_deadline(progress, now))
        for incident in list(self.fences.values()):
            decision += self.apply(self.fencing().on_deadline(incident, now))
        return decision

    def _rearm(self, now: datetime) -> list[Event]:
        """Monitors whose recovery succeeded and that saw no fault for `rearm_after`: Normal."""
        found: list[Event] = []
        for monitor, server in sorted(self._rearming):
            rearm_after = self.config.monitors[monitor].recovery.rearm_after
            state = self.monitors[(monitor, server)]
            if state.rearm_due(rearm_after, now):
                self._set(monitor, server, state.cleared())
                found.append(
                    events.REARMED.make(
                        at=now,
                        cause=f"rearm/{state.last_fault_id}",
                        monitor=monitor,
                        server=server,
                        rearm_after=str(rearm_after),
                    )
                )
        return found

    def _summarise_repeats(self, now: datetime) -> list[Event]:
        """The summaries of faults in Error that no later fault reported: a storm that stopped
        is still reported within one interval."""
        interval = self.config.service.repeat_summary_interval
        found = []
        for monitor, server in sorted(self._unreported):
            state = self.monitors[(monitor, server)]
            if state.summary_due(interval, now):
                cause = f"{state.last_fault_id}/{state.unreported}"
                found.append(
                    repeats_summary(
                        monitor, server, state, now, cause=cause, count=state.unreported
                    )
                )
                self._set(monitor, server, state.reported(now))
        return found

    def _awaited(self, command_id: str) -> RecoveryCommand | None:
        """The command a failover in progress waits for, as far as it can be told again (after a
        restart the service no longer holds every command it issued, but it holds its failovers)."""
        for progress in self.failovers.values():
            if progress.awaiting == command_id:
                step = CommandStep.START if progress.phase is Phase.STARTING else CommandStep.STOP
                server = progress.to_server if step is CommandStep.START else progress.from_server
                return failover_command(progress, step, server, progress.deadline)
        return None

    def restart_clocks(self, now: datetime) -> None:
        """After the state was rebuilt (a restart, a takeover), time without an active service
        counts for nothing: failover deadlines start again, and every agent gets a heartbeat's
        grace before it counts as silent."""
        service = self.config.service
        for group, progress in self.failovers.items():
            timeout = (
                service.start_timeout if progress.phase is Phase.STARTING else service.stop_timeout
            )
            self.failovers[group] = replace(
                progress, deadline=max(progress.deadline, now + timeout)
            )
        for server, incident in self.fences.items():
            if incident.awaiting is not None:  # the peer asked may still answer
                bmc = self.config.bmc_of(server)
                wait = (bmc.timeout if bmc else timedelta()) + ANSWER_GRACE
                self.fences[server] = replace(incident, deadline=max(incident.deadline, now + wait))
        for server, seen in self.view.last_seen.items():
            self.view.last_seen[server] = max(seen, now)

    def _rules(self, monitor: str) -> FailoverRules:
        return FailoverRules(
            self.config,
            self.view,
            self.unhealthy_for(monitor),
            self.config.service.exclude_destinations,
            self.request_fence,
        )

    def _remember(self, commands: tuple[RecoveryCommand, ...] | list[RecoveryCommand]) -> None:
        for command in commands:
            self.issued[command.id] = command
        while len(self.issued) > REMEMBERED_COMMANDS:
            self.issued.popitem(last=False)

    def _set(self, monitor: str, server: str, state: MonitorServerState) -> None:
        self.dirty.add((monitor, server))
        before = self.monitors[(monitor, server)]
        self.monitors[(monitor, server)] = state
        self._errors[server] += (state.status is Status.ERROR) - (before.status is Status.ERROR)
        self._index((monitor, server), state)

    def _index(self, key: Key, state: MonitorServerState) -> None:
        monitor, server = key
        in_error = self._error_servers.setdefault(monitor, set())
        if state.status is Status.ERROR:
            in_error.add(server)
        else:
            in_error.discard(server)
        if state.recovered_at is not None and state.status is Status.ERROR:
            if self.config.monitors[monitor].recovery.rearm_after is not None:
                self._rearming.add(key)
        else:
            self._rearming.discard(key)
        if state.unreported:
            self._unreported.add(key)
        else:
            self._unreported.discard(key)
