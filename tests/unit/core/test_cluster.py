"""The whole cluster's state: the ladder over time, clears, resets, and a property test.

Reminder of the example cluster (tests/unit/conftest.py): web runs on server1, db on server2;
server1 and server2 are site-a, server3 is site-b.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from mrwbus.config.loading import parse_config
from mrwbus.config.model import ActiveTiming, ClusterConfig
from mrwbus.core import operator_verbs
from mrwbus.core.cluster import ClusterState
from mrwbus.core.decision import Decision
from mrwbus.core.matching import MonitorIndex
from mrwbus.core.monitor import MonitorServerState, Status
from mrwbus.core.placement import target_groups
from mrwbus.core.progress import Phase
from mrwbus.messages import (
    Action,
    AgentReport,
    Category,
    CommandResult,
    CommandStep,
    FaultNotification,
    FinalAction,
    Outcome,
    RecoveryCommand,
    ReportReason,
)
from tests.unit.operate import operate

from ..conftest import CLUSTER_YAML, T0, FaultFactory

MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)


def codes(decision: Decision) -> list[str]:
    return [event.code for event in decision.events]


def actions(decision: Decision) -> list[Action]:
    return [command.action for command in decision.commands]


def clear(cluster: ClusterState, monitor: str, server: str, *, reset: bool = False) -> list[str]:
    found = operate(
        cluster,
        operator_verbs.clear,
        monitor,
        server,
        reset_counts=reset,
        by="operator",
        now=T0,
        cause="c",
    )
    return [event.code for event in found]


# --- the initial state -----------------------------------------------------------------------


def test_initial_state_has_every_watched_pair_normal(cluster: ClusterState) -> None:
    assert set(cluster.monitors) == {
        ("mrw1", "server1"),
        ("mrw1", "server2"),
        *((f"mrw{n}", f"server{s}") for n in range(2, 7) for s in range(1, 4)),
    }
    assert all(state == MonitorServerState() for state in cluster.monitors.values())
    assert cluster.servers_of("mrw1") == ["server1", "server2"]
    assert cluster.servers_in_error() == set()
    assert cluster.suspended == set()
    assert cluster.view.placement == {"web": "server1", "db": "server2"}


def test_servers_in_error_are_counted_from_a_given_state(config: ClusterConfig) -> None:
    initial = ClusterState.initial(config)
    monitors = dict(initial.monitors)
    monitors[("mrw2", "server3")] = MonitorServerState(status=Status.ERROR)
    state = ClusterState(config, initial.view, monitors, set())
    assert state.servers_in_error() == {"server3"}


# --- the ladder over time --------------------------------------------------------------------


def test_restart_ladder_with_clears_climbs_to_the_final_action_once(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    def fault() -> Decision:
        return cluster.handle_fault("mrw1", make_fault("server1", "NIC", "eth0"), T0)

    assert actions(fault()) == [Action.RESTART]
    assert cluster.state_of("mrw1", "server1").status is Status.ERROR
    assert actions(fault()) == []  # while Error
    assert clear(cluster, "mrw1", "server1") == ["MRW-401"]
    assert cluster.state_of("mrw1", "server1").restarts == 1  # clear keeps counts
    assert actions(fault()) == [Action.RESTART]
    clear(cluster, "mrw1", "server1")
    final = fault()
    assert actions(final) == [Action.FINAL_ACTION]
    assert final.commands[0].final_action is FinalAction.SHUTDOWN
    clear(cluster, "mrw1", "server1")
    exhausted = fault()
    assert actions(exhausted) == []
    assert codes(exhausted)[-1] == "MRW-303"
    assert clear(cluster, "mrw1", "server1", reset=True) == ["MRW-401", "MRW-402"]
    state = cluster.state_of("mrw1", "server1")
    assert (state.status, state.restarts, state.final_action_taken) == (Status.NORMAL, 0, False)
    assert actions(fault()) == [Action.RESTART]
    assert cluster.state_of("mrw1", "server1").faults == 6


def test_clear_while_normal_reports_nothing_unless_counts_are_reset(
    cluster: ClusterState,
) -> None:
    assert clear(cluster, "mrw1", "server1") == []
    assert clear(cluster, "mrw1", "server1", reset=True) == []  # no counts: nothing was reset


def test_counts_are_per_monitor_and_server(cluster: ClusterState, make_fault: FaultFactory) -> None:
    cluster.handle_fault("mrw6", make_fault("server1", "HA/RS", "mem"), T0)  # final: stop web
    assert cluster.state_of("mrw6", "server1").final_action_taken
    assert not cluster.state_of("mrw6", "server2").final_action_taken
    decision = cluster.handle_fault("mrw6", make_fault("server2", "HA/RS", "mem"), T0)
    assert [(c.final_action, c.group) for c in decision.commands] == [
        (FinalAction.STOP_GROUP, "db")
    ]
    assert cluster.view.placement == {"web": None, "db": None}


def test_servers_in_error_follow_every_monitor_on_the_server(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    cluster.handle_fault("mrw2", make_fault("server3", "FC", "hba0"), T0)  # db not there: 301
    cluster.handle_fault("mrw3", make_fault("server3", "HA/SS", "sdb"), T0)  # nothing there
    assert cluster.servers_in_error() == {"server3"}
    clear(cluster, "mrw2", "server3")
    assert cluster.servers_in_error() == {"server3"}
    clear(cluster, "mrw3", "server3")
    assert cluster.servers_in_error() == set()


def test_recovery_notice_without_clear_on_recovery_keeps_error(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    cluster.handle_fault("mrw1", make_fault("server1", "NIC", "eth0"), T0)
    notice = cluster.handle_fault(
        "mrw1", make_fault("server1", "NIC", "eth0", state="recovered"), T0
    )
    assert notice.commands == ()
    assert cluster.state_of("mrw1", "server1").status is Status.ERROR
    assert cluster.servers_in_error() == {"server1"}


# --- reset_counts_after ----------------------------------------------------------------------


@pytest.fixture
def all_groups_cluster(cluster_yaml: str) -> ClusterState:
    """mrw1 restarting every group on the server, so both server1 and server2 can restart."""
    text = cluster_yaml.replace("      target: web\n", "      target: all_groups\n", 1)
    return ClusterState.initial(parse_config(text))


def test_counts_expire_per_pair_lazily_at_the_next_fault(
    all_groups_cluster: ClusterState, make_fault: FaultFactory
) -> None:
    cluster = all_groups_cluster  # mrw1: max_restarts 2, reset_counts_after 10m

    def fault(server: str, at: datetime) -> Decision:
        device = "eth0" if server == "server1" else "eth1"
        return cluster.handle_fault("mrw1", make_fault(server, "NIC", device), at)

    assert actions(fault("server1", T0)) == [Action.RESTART]
    assert actions(fault("server2", T0 + 5 * MINUTE)) == [Action.RESTART]
    clear(cluster, "mrw1", "server1")
    clear(cluster, "mrw1", "server2")
    # nothing happens to the counts by itself
    assert cluster.state_of("mrw1", "server1").restarts == 1
    one = fault("server1", T0 + 10 * MINUTE)  # 10m since server1's last fault: expired
    assert codes(one)[0] == "MRW-403"
    assert cluster.state_of("mrw1", "server1").restarts == 1  # reset to 0, then restarted
    two = fault("server2", T0 + 10 * MINUTE)  # 5m since server2's last fault: kept
    assert "MRW-403" not in codes(two)
    assert cluster.state_of("mrw1", "server2").restarts == 2


def test_a_fault_while_error_restarts_the_reset_clock(
    all_groups_cluster: ClusterState, make_fault: FaultFactory
) -> None:
    cluster = all_groups_cluster

    def fault(at: datetime) -> Decision:
        return cluster.handle_fault("mrw1", make_fault("server1", "NIC", "eth0"), at)

    fault(T0)
    fault(T0 + 8 * MINUTE)  # while Error: recorded
    clear(cluster, "mrw1", "server1")
    later = fault(T0 + 12 * MINUTE)  # 4m since the last fault
    assert "MRW-403" not in codes(later)
    assert cluster.state_of("mrw1", "server1").restarts == 2


# --- suspend and resume ----------------------------------------------------------------------


def test_suspended_monitor_records_faults_and_resumes(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    suspended = operate(cluster, operator_verbs.suspend, "mrw1", by="operator", now=T0, cause="s")
    assert [event.code for event in suspended] == ["MRW-404"]
    assert operate(cluster, operator_verbs.suspend, "mrw1", by="operator", now=T0, cause="s") == []
    decision = cluster.handle_fault("mrw1", make_fault("server1", "NIC", "eth0"), T0)
    assert decision.commands == ()
    state = cluster.state_of("mrw1", "server1")
    assert (state.status, state.faults, state.restarts) == (Status.NORMAL, 1, 0)
    assert [
        e.code
        for e in operate(cluster, operator_verbs.resume, "mrw1", by="operator", now=T0, cause="r")
    ] == ["MRW-405"]
    assert operate(cluster, operator_verbs.resume, "mrw1", by="operator", now=T0, cause="r") == []
    assert actions(cluster.handle_fault("mrw1", make_fault("server1", "NIC", "eth0"), T0)) == [
        Action.RESTART
    ]


def test_suspending_one_monitor_leaves_the_others_acting(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    operate(cluster, operator_verbs.suspend, "mrw1", by="operator", now=T0, cause="s")
    assert actions(cluster.handle_fault("mrw4", make_fault("server1", "HA/AM", "app"), T0)) == [
        Action.SCRIPT
    ]


# --- the last healthy server -----------------------------------------------------------------


def test_final_action_is_suppressed_on_the_last_healthy_server(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    # FC faults on server1 and server3 (db not there) put mrw2 in Error on both
    cluster.handle_fault("mrw2", make_fault("server1", "FC", "hba0"), T0)
    cluster.handle_fault("mrw2", make_fault("server3", "FC", "hba0"), T0)
    decision = cluster.handle_fault("mrw3", make_fault("server2", "HA/SS", "sdb"), T0)
    assert decision.commands == ()
    assert codes(decision)[-1] == "MRW-305"
    assert not cluster.state_of("mrw3", "server2").final_action_taken  # suppressed: not taken
    # once another server is healthy again, the reboot goes ahead (no reset needed)
    clear(cluster, "mrw2", "server3")
    clear(cluster, "mrw3", "server2")
    decision = cluster.handle_fault("mrw3", make_fault("server2", "HA/SS", "sdb"), T0)
    assert [c.final_action for c in decision.commands] == [FinalAction.REBOOT]


def test_protection_of_the_last_healthy_server_can_be_turned_off(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    cluster = ClusterState.initial(config, protect_last_healthy_server=False)
    cluster.view.alive = {"server2"}
    decision = cluster.handle_fault("mrw3", make_fault("server2", "HA/SS", "sdb"), T0)
    assert [c.final_action for c in decision.commands] == [FinalAction.REBOOT]


# --- failover, step by step ------------------------------------------------------------------


def result(
    command: RecoveryCommand,
    outcome: Outcome = Outcome.SUCCEEDED,
    *,
    before_script: Outcome | None = None,
    detail: str = "",
) -> CommandResult:
    return CommandResult(
        id=f"result-{command.id}",
        command_id=command.id,
        server=command.server,
        outcome=outcome,
        detail=detail,
        before_script_outcome=before_script,
        finished_at=T0,
    )


def report(server: str, *groups: str, serial: int = 0, at: datetime = T0) -> AgentReport:
    return AgentReport(
        id=f"report-{server}-{serial}",
        server=server,
        active_groups=list(groups),
        reason=ReportReason.CHANGE,
        heartbeat_interval=5,
        sent_at=at,
    )


def reaction_codes(reaction: Decision) -> list[str]:
    return [event.code for event in reaction.events]


# --- results, reports, heartbeats, status ----------------------------------------------------


def test_result_of_an_unknown_command_is_only_reported(cluster: ClusterState) -> None:
    stray = CommandResult(
        id="r-1",
        command_id="nobody-sent-this",
        server="server1",
        outcome=Outcome.SUCCEEDED,
        finished_at=T0,
    )
    reaction = cluster.handle_result(stray, T0)
    assert reaction.commands == ()
    [event] = reaction.events
    assert (event.code, event.monitor, event.command_id) == ("MRW-701", "_", "nobody-sent-this")


def test_failed_before_script_is_reported(cluster: ClusterState, make_fault: FaultFactory) -> None:
    [stop] = cluster.handle_fault("mrw2", make_fault("server2", "FC", "hba0"), T0).commands
    reaction = cluster.handle_result(result(stop, before_script=Outcome.FAILED), T0)
    assert reaction_codes(reaction)[:2] == ["MRW-701", "MRW-703"]
    assert len(reaction.commands) == 1  # the recovery went on


def test_agent_reports_correct_the_placement(cluster: ClusterState) -> None:
    cluster.handle_report(report("server3", "web"), T0)
    assert cluster.view.placement["web"] == "server3"
    cluster.handle_report(report("server3"), T0)
    assert cluster.view.placement["web"] is None  # its server says it no longer runs it
    assert cluster.handle_report(report("server9", "web"), T0).events == ()  # unknown server


def test_group_reported_on_two_servers_is_an_event(cluster: ClusterState) -> None:
    cluster.handle_report(report("server1", "web"), T0)
    reaction = cluster.handle_report(report("server2", "web", "db"), T0)
    assert reaction_codes(reaction) == ["MRW-603"]
    assert reaction.events[0].group == "web"
    assert cluster.view.placement["web"] == "server1"  # left as it was
    assert cluster.view.placement["db"] == "server2"


def test_silent_agent_is_no_destination_until_it_reports_again(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    timeout = cluster.config.service.heartbeat_timeout
    cluster.handle_report(report("server2", "db"), T0)
    assert cluster.tick(T0 + timeout).events == ()  # exactly the timeout: not yet silent
    silent = cluster.tick(T0 + timeout + SECOND)
    assert reaction_codes(silent) == ["MRW-601", "MRW-1005"]  # db ran there: unproven
    assert "server2" not in cluster.view.alive
    # mrw5 would fail web over to server2; server3 it is
    [stop] = cluster.handle_fault("mrw5", make_fault("server1", "SPS", "dd0"), T0).commands
    assert stop.to_server == "server3"
    late = cluster.handle_report(report("server2", "db", serial=1), T0 + timeout * 2)
    assert (
        reaction_codes(late) == [] and "server2" not in cluster.view.alive
    )  # it waited out the outage
    fresh = report("server2", "db", serial=2, at=T0 + timeout * 2)
    back = cluster.handle_report(fresh, T0 + timeout * 2)
    assert reaction_codes(back) == ["MRW-602"]
    assert "server2" in cluster.view.alive


def test_rebuilt_state_restarts_failover_deadlines_and_heartbeat_clocks(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    cluster.handle_report(report("server2", "db"), T0)
    [stop] = cluster.handle_fault("mrw5", make_fault("server1", "SPS", "dd0"), T0).commands
    later = T0 + timedelta(hours=1)  # the service was down for an hour
    cluster.restart_clocks(later)
    assert cluster.tick(later + SECOND).events == ()  # no deadline passed, nobody silent yet
    (progress,) = cluster.failovers.values()
    assert progress.deadline == later + cluster.config.service.stop_timeout
    assert progress.awaiting == stop.id


def test_for_config_takes_the_service_settings(cluster_yaml: str) -> None:
    text = cluster_yaml + "service:\n  protect_last_healthy_server: false\n"
    assert ClusterState.for_config(parse_config(text)).protect_last_healthy_server is False
    assert ClusterState.for_config(parse_config(cluster_yaml)).protect_last_healthy_server


# --- property: any sequence of inputs follows the ladder -------------------------------------

CONFIG = parse_config(CLUSTER_YAML)
INDEX = MonitorIndex(CONFIG)
PAIRS = sorted(ClusterState.initial(CONFIG).monitors)
SERVERS = list(CONFIG.servers)
MONITORS = list(CONFIG.monitors)


@dataclass
class Model:
    """What the ladder says one monitor on one server should look like."""

    status: Status = Status.NORMAL
    restarts: int = 0
    failovers: int = 0
    final_taken: bool = False
    faults: int = 0
    last_fault_at: datetime | None = None
    # plain tallies of what was issued since the last reset, for the simplest invariants
    restart_rungs: int = 0
    failover_rungs: int = 0
    final_commands: int = 0

    def reset(self) -> None:
        self.restarts = self.failovers = 0
        self.final_taken = False
        self.restart_rungs = self.failover_rungs = self.final_commands = 0

    @property
    def has_counts(self) -> bool:
        return bool(self.restarts or self.failovers or self.final_taken)


DEVICES = ["eth0", "eth1", "sdb", "app", "dd0"]
ADVANCES = [1, 30, 89, 90, 300, 599, 600, 3600]
GROUPS = list(CONFIG.groups)
OUTCOMES = list(Outcome)


def decode(focus: list[tuple[str, str]], code: int) -> tuple[Any, ...]:
    """One input from one number: cheap to draw, and it shrinks towards a fault.

    Faults and clears mostly hit the few `focus` pairs, so their ladders get climbed.
    """
    kind, rest = code % 16, code // 16
    if kind <= 5:  # a fault the focus pair's monitor matches (others may match too)
        monitor, server = focus[rest % len(focus)]
        device = CONFIG.keyword_for(monitor, server) or "dev0"
        state = "recovered" if rest // 8 % 7 == 3 else "error"
        return ("fault", server, CONFIG.monitors[monitor].category, device, state)
    if kind == 6:  # any fault at all
        category = list(Category)[rest // 4 % len(Category)]
        return ("fault", SERVERS[rest % 3], category, DEVICES[rest // 32 % 5], "error")
    if kind <= 9:
        return ("clear", focus[rest % len(focus)], rest // 8 % 3 == 0)
    if kind == 10:
        return ("advance", ADVANCES[rest % len(ADVANCES)])
    if kind == 11:
        return ("suspend", MONITORS[rest % len(MONITORS)], rest // 8 % 2 == 0)
    if kind == 12:
        return ("place", GROUPS[rest % 2], [*SERVERS, None][rest // 2 % 4])
    if kind == 13:
        return ("alive", SERVERS[rest % 3], rest // 4 % 3 != 0)
    if kind == 14 or (kind == 15 and rest % 3):
        outcome = OUTCOMES[rest // 2 % 4] if rest // 8 % 2 else Outcome.SUCCEEDED
        return ("result", rest % 2, outcome, OUTCOMES[rest // 64 % 4])
    return ("tick",)


@st.composite
def scenarios(draw: st.DrawFn, max_size: int = 60) -> list[tuple[Any, ...]]:
    focus = draw(st.lists(st.sampled_from(PAIRS), min_size=1, max_size=2, unique=True))
    codes_ = draw(st.lists(st.integers(0, 2**16), min_size=5, max_size=max_size))
    return [decode(focus, code) for code in codes_]


class LadderCheck:
    """Drives a ClusterState and checks each decision against the ladder."""

    def __init__(self) -> None:
        self.cluster = ClusterState.initial(CONFIG)
        self.models = {pair: Model() for pair in PAIRS}
        self.now = T0
        self.serial = 0

    def run(self, step: tuple[Any, ...]) -> None:
        kind, *args = step
        getattr(self, kind)(*args)
        self.check_states()
        self.check_failovers()

    # --- inputs ---

    def fault(self, server: str, category: Category, device: str, state: str) -> None:
        self.serial += 1
        fault = FaultNotification(
            id=f"f{self.serial}",
            server=server,
            category=category,
            device=device,
            occurred_at=self.now,
            state=state,  # type: ignore[arg-type]
        )
        for monitor in INDEX.match(server, category, device):
            in_error = self.servers_in_error()
            assert self.cluster.servers_in_error() == in_error
            view = self.cluster.view
            active = {g for g in CONFIG.groups if view.is_active(g, server)}
            alive = set(view.alive)
            moving = set(self.cluster.failovers)
            decision = self.cluster.handle_fault(monitor, fault, self.now)
            self.check_decision(monitor, fault, decision, in_error, active, alive)
            assert not {p.group for p in decision.failovers} & moving, "a second failover"
            assert CommandStep.START not in {c.step for c in decision.commands}

    def clear(self, pair: tuple[str, str], reset: bool) -> None:
        operate(
            self.cluster,
            operator_verbs.clear,
            *pair,
            reset_counts=reset,
            by="test",
            now=self.now,
            cause="c",
        )
        model = self.models[pair]
        model.status = Status.NORMAL
        if reset:
            model.reset()

    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    def suspend(self, monitor: str, suspend: bool) -> None:
        change = operator_verbs.suspend if suspend else operator_verbs.resume
        operate(self.cluster, change, monitor, by="test", now=self.now, cause="s")

    def place(self, group: str, server: str | None) -> None:
        if group not in self.cluster.view.moving:  # as an agent's report would
            self.cluster.view.placement[group] = server

    def alive(self, server: str, alive: bool) -> None:
        (self.cluster.view.alive.add if alive else self.cluster.view.alive.discard)(server)

    def result(self, index: int, outcome: Outcome, before: Outcome) -> None:
        """The agent's answer to the command the index-th failover in progress awaits."""
        waiting = sorted(self.cluster.failovers.values(), key=lambda p: p.group)
        if not waiting:
            return
        progress = waiting[index % len(waiting)]
        command = self.cluster.issued[progress.awaiting]
        in_error = self.cluster.servers_in_error()
        answer = CommandResult(
            id=f"r-{command.id}",
            command_id=command.id,
            server=command.server,
            outcome=outcome,
            before_script_outcome=before if command.before_script else None,
            finished_at=self.now,
        )
        reaction = self.cluster.handle_result(answer, self.now)
        group = progress.group
        starts = [c for c in reaction.commands if c.step is CommandStep.START]
        assert len(reaction.commands) == len(starts) <= 1
        if progress.phase is Phase.STOPPING:
            if outcome is Outcome.SUCCEEDED:
                [start] = starts
                assert (start.server, start.group) == (progress.to_server, group)
                assert self.cluster.view.placement[group] is None
            else:  # no fencing in this cluster: the group stays, nothing starts
                assert starts == []
                assert group not in self.cluster.failovers
                assert self.cluster.view.placement[group] == progress.from_server
        elif outcome is Outcome.SUCCEEDED:
            assert starts == []
            assert self.cluster.view.placement[group] == progress.to_server
            assert group not in self.cluster.failovers
        elif starts:
            [start] = starts
            assert start.server not in (*progress.tried, progress.from_server)
            assert start.server in self.cluster.view.alive
            assert start.server not in in_error
        else:
            assert self.cluster.view.placement[group] is None
        # a repeated answer changes nothing
        again = self.cluster.handle_result(answer, self.now)
        assert again.commands == ()

    def tick(self) -> None:
        due = {g for g, p in self.cluster.failovers.items() if p.deadline <= self.now}
        reaction = self.cluster.tick(self.now)
        assert reaction.commands == ()  # no fencing configured: deadlines only give up
        assert not due & set(self.cluster.failovers)

    # --- checks ---

    def servers_in_error(self) -> set[str]:
        return {server for (_, server), m in self.models.items() if m.status is Status.ERROR}

    def check_states(self) -> None:
        for pair, model in self.models.items():
            state = self.cluster.state_of(*pair)
            assert (
                state.status,
                state.restarts,
                state.failovers,
                state.final_action_taken,
                state.faults,
            ) == (
                model.status,
                model.restarts,
                model.failovers,
                model.final_taken,
                model.faults,
            ), pair
        assert self.cluster.servers_in_error() == self.servers_in_error()

    def check_failovers(self) -> None:
        """A group being failed over is in `moving`, stopping on its source or started nowhere."""
        assert set(self.cluster.failovers) == self.cluster.view.moving
        for group, progress in self.cluster.failovers.items():
            where = self.cluster.view.placement[group]
            if progress.phase is Phase.STOPPING:
                assert where == progress.from_server
            else:
                assert where is None

    def check_decision(
        self,
        monitor: str,
        fault: FaultNotification,
        decision: Decision,
        in_error: set[str],
        active: set[str],
        alive: set[str],
    ) -> None:
        settings_ = CONFIG.monitors[monitor]
        recovery = settings_.recovery
        model = self.models[(monitor, fault.server)]
        codes_ = codes(decision)
        commands = decision.commands

        expired = (
            recovery.reset_counts_after is not None
            and model.last_fault_at is not None
            and self.now - model.last_fault_at >= recovery.reset_counts_after
        )
        assert ("MRW-403" in codes_) == (expired and model.has_counts)
        if expired:
            model.reset()

        if fault.state == "recovered":
            assert commands == ()
            if recovery.clear_on_recovery:
                model.status = Status.NORMAL
            return

        if monitor in self.cluster.suspended:
            assert commands == ()
            model.faults += 1
            model.last_fault_at = self.now
            return
        timing = settings_.timing
        if (
            isinstance(timing, ActiveTiming)
            and not set(target_groups(CONFIG, timing.active)) & active
        ):
            assert commands == ()
            assert codes_[-1] == "MRW-105"
            return
        model.faults += 1
        model.last_fault_at = self.now
        if model.status is Status.ERROR:
            assert commands == (), "a fault while Error started a recovery"
            return
        model.status = Status.ERROR

        groups = [g for g in target_groups(CONFIG, recovery.target) if g in active]
        if not groups:
            assert commands == ()
            assert codes_[-1] == "MRW-301"
            return
        action = recovery.action
        if action is Action.SCRIPT:
            assert actions(decision) == [Action.SCRIPT]
        elif action is Action.RESTART and model.restarts < recovery.max_restarts:
            assert actions(decision) == [Action.RESTART] * len(groups)
            model.restarts += 1
            model.restart_rungs += 1
        elif action is Action.FAILOVER and model.failovers < recovery.max_failovers:
            assert codes_.count("MRW-302") == len(groups) - len(commands)
            for command in commands:
                assert (command.action, command.step) == (Action.FAILOVER, CommandStep.STOP)
                assert command.server == command.from_server == fault.server
                assert command.to_server != fault.server
                assert command.to_server in alive
                assert command.to_server not in in_error
                if recovery.outside_server_group:
                    assert CONFIG.server_group(command.to_server) != CONFIG.server_group(
                        fault.server
                    )
            assert len(decision.failovers) == len(commands)
            if commands:
                model.failovers += 1
                model.failover_rungs += 1
        elif not model.final_taken:
            final = recovery.final_action
            healthy = alive - in_error - {fault.server}
            # A suppressed final action was not taken: the next fault may take it.
            model.final_taken = not (final.takes_server_down and not healthy)
            if final is FinalAction.NONE:
                assert commands == ()
                assert codes_[-1] == "MRW-304"
            elif final.takes_server_down and not healthy:
                assert commands == ()
                assert codes_[-1] == "MRW-305"
            else:
                expected = len(groups) if final is FinalAction.STOP_GROUP else 1
                assert actions(decision) == [Action.FINAL_ACTION] * expected
                assert {c.final_action for c in commands} == {final}
                model.final_commands += 1
        else:
            assert commands == ()
            assert codes_[-1] == "MRW-303"

        # the ladder's plain limits, whatever the path taken above
        assert model.restart_rungs <= recovery.max_restarts
        assert model.failover_rungs <= recovery.max_failovers
        assert model.final_commands <= 1


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_any_sequence_of_inputs_follows_the_ladder(steps: list[tuple[Any, ...]]) -> None:
    check = LadderCheck()
    for step in steps:
        note(repr(step))
        check.run(step)


@settings(max_examples=50, deadline=None)
@given(scenarios(max_size=30))
def test_replaying_the_same_inputs_gives_the_same_commands(steps: list[tuple[Any, ...]]) -> None:
    def replay() -> list[tuple[str, str, str]]:
        cluster = ClusterState.initial(CONFIG)
        now = T0
        issued = []
        for serial, step in enumerate(steps):
            if step[0] == "advance":
                now += timedelta(seconds=step[1])
            elif step[0] == "fault":
                _, server, category, device, state = step
                fault = FaultNotification(
                    id=f"f{serial}",
                    server=server,
                    category=category,
                    device=device,
                    occurred_at=now,
                    state=state,
                )
                for monitor in INDEX.match(server, category, device):
                    decision = cluster.handle_fault(monitor, fault, now)
                    issued += [(c.id, c.server, c.action.value) for c in decision.commands]
            elif step[0] == "clear":
                operate(
                    cluster,
                    operator_verbs.clear,
                    *step[1],
                    reset_counts=step[2],
                    by="t",
                    now=now,
                    cause="c",
                )
        return issued

    first = replay()
    assert first == replay()
    assert len({command_id for command_id, _, _ in first}) == len(first)
