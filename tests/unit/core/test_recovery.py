"""The policy engine: one fault and one monitor's state in, commands and events out.

Reminder of the example cluster (tests/unit/conftest.py): web runs on server1, db on server2;
server1 and server2 are site-a, server3 is site-b.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

import pytest

from mrwbus.config.loading import parse_config
from mrwbus.config.model import ClusterConfig
from mrwbus.core.decision import Decision
from mrwbus.core.monitor import MonitorServerState, Status
from mrwbus.core.placement import ClusterView
from mrwbus.core.progress import Phase
from mrwbus.core.recovery import Situation, decide_fault
from mrwbus.messages import (
    Action,
    Category,
    CommandStep,
    EventKind,
    FaultNotification,
    FinalAction,
)

from ..conftest import T0, FaultFactory

NORMAL = MonitorServerState()


def decide(
    config: ClusterConfig,
    monitor: str,
    fault: FaultNotification,
    state: MonitorServerState = NORMAL,
    *,
    view: ClusterView | None = None,
    in_error: Collection[str] = (),
    suspended: bool = False,
    protect: bool = True,
    now: datetime = T0,
) -> Decision:
    situation = Situation(
        view=view or ClusterView.initial(config),
        servers_in_error=in_error,
        suspended=suspended,
        protect_last_healthy_server=protect,
    )
    return decide_fault(config, monitor, fault, state, situation, now)


def codes(decision: Decision) -> list[str]:
    return [event.code for event in decision.events]


def variant(cluster_yaml: str, old: str, new: str) -> ClusterConfig:
    assert old in cluster_yaml
    return parse_config(cluster_yaml.replace(old, new, 1), "cluster.yaml")


# --- restart ---------------------------------------------------------------------------------


def test_fault_while_normal_turns_error_and_restarts_the_target(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    fault = make_fault("server1", Category.NIC, "eth0", id="f-1", message="link down")
    decision = decide(config, "mrw1", fault)
    assert decision.state.status is Status.ERROR
    assert decision.state.restarts == 1
    assert decision.state.faults == 1
    assert decision.state.last_fault_id == "f-1"
    assert decision.state.last_message == "link down"
    [command] = decision.commands
    assert command.action is Action.RESTART
    assert command.server == "server1"
    assert command.group == "web"
    assert command.resource is None
    assert command.monitor == "mrw1"
    assert command.fault_id == "f-1"
    assert command.issued_at == T0
    assert (command.step, command.from_server, command.to_server) == (None, None, None)
    assert command.final_action is None
    assert codes(decision) == ["MRW-101", "MRW-102", "MRW-201"]
    assert decision.events[-1].command_id == command.id
    assert decision.moves == {}


def test_restart_of_a_resource_names_the_resource(
    cluster_yaml: str, make_fault: FaultFactory
) -> None:
    config = variant(cluster_yaml, "      target: web\n", "      target: web-app\n")
    [command] = decide(config, "mrw1", make_fault("server1", "NIC", "eth0")).commands
    assert (command.group, command.resource) == ("web", "web-app")


def test_restart_of_all_groups_restarts_each_group_active_there_counted_once(
    cluster_yaml: str, config: ClusterConfig, make_fault: FaultFactory
) -> None:
    config = variant(cluster_yaml, "      max_restarts: 0\n", "      max_restarts: 1\n")
    view = ClusterView.initial(config)
    view.placement["db"] = "server1"
    decision = decide(config, "mrw6", make_fault("server1", "HA/RS", "memory"), view=view)
    assert sorted(c.group or "" for c in decision.commands) == ["db", "web"]
    assert {c.action for c in decision.commands} == {Action.RESTART}
    assert decision.state.restarts == 1


def test_restarts_exhausted_take_the_final_action(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    state = MonitorServerState(restarts=2)
    decision = decide(config, "mrw1", make_fault("server1", "NIC", "eth0"), state)
    [command] = decision.commands
    assert command.action is Action.FINAL_ACTION
    assert command.final_action is FinalAction.SHUTDOWN
    assert command.server == "server1"
    assert command.group is None
    assert decision.state.final_action_taken is True
    assert decision.state.restarts == 2
    assert decision.state.status is Status.ERROR


def test_final_action_taken_means_nothing_more_until_counts_reset(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    state = MonitorServerState(restarts=2, final_action_taken=True)
    decision = decide(config, "mrw1", make_fault("server1", "NIC", "eth0"), state)
    assert decision.commands == ()
    assert decision.state.status is Status.ERROR
    assert codes(decision)[-1] == "MRW-303"
    assert decision.events[-1].kind is EventKind.NOT_TAKEN


# --- a fault while Error, suspended, out of its timing -------------------------------------


def test_fault_while_error_is_counted_and_starts_nothing(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    state = MonitorServerState(status=Status.ERROR, restarts=1, faults=1)
    decision = decide(config, "mrw1", make_fault("server1", "NIC", "eth0", id="f-2"), state)
    assert decision.commands == ()
    assert decision.state.status is Status.ERROR
    assert decision.state.faults == 2
    assert decision.state.restarts == 1
    assert decision.state.last_fault_id == "f-2"
    assert codes(decision) == ["MRW-101", "MRW-103"]
    assert decision.events[-1].detail["faults"] == 2


def test_suspended_monitor_records_the_fault_and_does_nothing(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    decision = decide(config, "mrw1", make_fault("server1", "NIC", "eth0"), suspended=True)
    assert decision.commands == ()
    assert decision.state.status is Status.NORMAL
    assert decision.state.faults == 1
    assert decision.state.restarts == 0
    assert codes(decision) == ["MRW-101", "MRW-104"]


def test_fault_outside_active_timing_is_reported_and_changes_nothing(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    # mrw5 acts only while web-ip (group web) is active on the server; web is on server1
    decision = decide(config, "mrw5", make_fault("server2", "SPS", "dd0"))
    assert decision.commands == ()
    assert decision.state == NORMAL
    assert codes(decision) == ["MRW-101", "MRW-105"]
    acted = decide(config, "mrw5", make_fault("server1", "SPS", "dd0"))
    assert acted.state.status is Status.ERROR
    assert [c.step for c in acted.commands] == [CommandStep.STOP]


# --- target not active -----------------------------------------------------------------------


def test_target_not_active_on_the_server_turns_error_without_recovery(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    # mrw1 restarts web, which runs on server1; the fault comes from server2
    decision = decide(config, "mrw1", make_fault("server2", "NIC", "eth1"))
    assert decision.state.status is Status.ERROR
    assert decision.state.restarts == 0
    assert decision.commands == ()
    assert codes(decision) == ["MRW-101", "MRW-102", "MRW-301"]
    not_taken = decision.events[-1]
    assert not_taken.kind is EventKind.NOT_TAKEN
    assert not_taken.server == "server2"
    assert not_taken.detail["target"] == "web"


def test_group_stopped_everywhere_is_not_active(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    view = ClusterView.initial(config)
    view.placement["web"] = None
    decision = decide(config, "mrw1", make_fault("server1", "NIC", "eth0"), view=view)
    assert decision.commands == ()
    assert codes(decision)[-1] == "MRW-301"


def test_script_runs_only_where_its_target_is_active(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    decision = decide(config, "mrw4", make_fault("server1", "HA/AM", "app"))
    [command] = decision.commands
    assert command.action is Action.SCRIPT
    assert command.script == "/opt/fix-app.sh"
    assert command.server == "server1"
    assert command.group is None
    not_run = decide(config, "mrw4", make_fault("server3", "HA/AM", "app"))
    assert not_run.commands == ()
    assert codes(not_run)[-1] == "MRW-301"


# --- failover --------------------------------------------------------------------------------


def test_failover_first_stops_the_group_on_the_server_left(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    # mrw2 fails db over outside its server group: server2 (site-a) -> server3 (site-b).
    # Only the stop goes out now; the start waits for its confirmation (core.failover).
    decision = decide(config, "mrw2", make_fault("server2", "FC", "hba0", id="f-9"))
    [stop] = decision.commands
    assert (stop.action, stop.step, stop.server) == (Action.FAILOVER, CommandStep.STOP, "server2")
    assert stop.group == "db"
    assert (stop.from_server, stop.to_server) == ("server2", "server3")
    assert stop.fault_id == "f-9"
    assert stop.before_script == "/opt/collect-fc-logs.sh"
    [progress] = decision.failovers
    assert progress.group == "db"
    assert progress.phase is Phase.STOPPING
    assert progress.awaiting == stop.id
    assert (progress.from_server, progress.to_server) == ("server2", "server3")
    assert progress.deadline == T0 + config.service.stop_timeout
    assert decision.moves == {}  # the group moves when the stop is confirmed, not before
    assert decision.state.failovers == 1
    assert decision.state.status is Status.ERROR
    assert codes(decision) == ["MRW-101", "MRW-102", "MRW-201"]
    assert decision.events[-1].command_id == stop.id


def test_failover_goes_to_the_highest_priority_eligible_server(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    fault = make_fault("server1", "SPS", "dd0")  # mrw5: web, same server group allowed

    def destination(**situation: object) -> str | None:
        [stop] = decide(config, "mrw5", fault, **situation).commands  # type: ignore[arg-type]
        return stop.to_server

    assert destination() == "server2"
    assert destination(in_error={"server2"}) == "server3"
    view = ClusterView.initial(config)
    view.alive.discard("server2")
    assert destination(view=view) == "server3"


def test_group_being_failed_over_is_not_recovered_again(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    view = ClusterView.initial(config)
    view.moving.add("db")  # a failover of db from server2 is waiting for its stop
    decision = decide(config, "mrw2", make_fault("server2", "FC", "hba1"), view=view)
    assert decision.commands == ()
    assert decision.failovers == ()
    assert codes(decision)[-2:] == ["MRW-306", "MRW-301"]
    assert decision.state.failovers == 0


def test_no_failover_destination_is_an_event_and_no_command(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    view = ClusterView.initial(config)
    view.alive.discard("server3")  # the only server of another server group
    decision = decide(config, "mrw2", make_fault("server2", "FC", "hba0"), view=view)
    assert decision.commands == ()
    assert decision.moves == {}
    assert decision.state.status is Status.ERROR
    assert decision.state.failovers == 0  # nothing was used up
    assert codes(decision)[-1] == "MRW-302"
    event = decision.events[-1]
    assert event.group == "db"
    assert "server3: not alive" in event.detail["reason"]
    assert "server1: in the same server group (site-a)" in event.detail["reason"]


def test_failovers_exhausted_take_the_final_action(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    state = MonitorServerState(failovers=1)
    decision = decide(config, "mrw2", make_fault("server2", "FC", "hba0"), state)
    [command] = decision.commands
    assert command.action is Action.FINAL_ACTION
    assert command.final_action is FinalAction.STOP_GROUP
    assert command.group == "db"
    assert command.server == "server2"
    assert command.before_script == "/opt/collect-fc-logs.sh"
    assert decision.moves == {"db": None}
    assert decision.state.final_action_taken is True


# --- final actions ---------------------------------------------------------------------------


def test_final_action_only_acts_at_once(config: ClusterConfig, make_fault: FaultFactory) -> None:
    decision = decide(config, "mrw3", make_fault("server2", "HA/SS", "sdb"))
    [command] = decision.commands
    assert (command.action, command.final_action) == (Action.FINAL_ACTION, FinalAction.REBOOT)
    assert command.server == "server2"
    assert decision.state.final_action_taken is True


def test_final_action_only_needs_an_active_group(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    decision = decide(config, "mrw3", make_fault("server3", "HA/SS", "sdb"))  # nothing on server3
    assert decision.commands == ()
    assert codes(decision)[-1] == "MRW-301"
    assert decision.state.final_action_taken is False


def test_final_action_none_does_nothing_once(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    state = MonitorServerState(failovers=2)  # mrw5: max_failovers 2, final action none
    decision = decide(config, "mrw5", make_fault("server1", "SPS", "dd0"), state)
    assert decision.commands == ()
    assert codes(decision)[-1] == "MRW-304"
    assert decision.state.final_action_taken is True


@pytest.mark.parametrize(
    ("alive", "in_error"),
    [
        ({"server1", "server2", "server3"}, {"server2", "server3"}),
        ({"server1"}, set()),
        ({"server1", "server3"}, {"server3"}),
    ],
    ids=["others-in-error", "others-down", "mixed"],
)
def test_final_action_taking_down_the_last_healthy_server_is_suppressed(
    config: ClusterConfig, make_fault: FaultFactory, alive: set[str], in_error: set[str]
) -> None:
    view = ClusterView.initial(config)
    view.alive = set(alive)
    fault = make_fault("server1", "NIC", "eth0")
    state = MonitorServerState(restarts=2)
    decision = decide(config, "mrw1", fault, state, view=view, in_error=in_error)
    assert decision.commands == ()
    assert codes(decision)[-1] == "MRW-305"
    assert decision.events[-1].detail["final_action"] == "shutdown"
    assert (
        not decision.state.final_action_taken
    )  # suppressed is not taken: a later fault may take it
    unprotected = decide(config, "mrw1", fault, state, view=view, in_error=in_error, protect=False)
    assert [c.final_action for c in unprotected.commands] == [FinalAction.SHUTDOWN]


def test_final_action_goes_ahead_while_another_server_is_healthy(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    fault = make_fault("server1", "NIC", "eth0")
    state = MonitorServerState(restarts=2)
    decision = decide(config, "mrw1", fault, state, in_error={"server2"})
    assert [c.final_action for c in decision.commands] == [FinalAction.SHUTDOWN]


def test_stop_group_is_not_suppressed_on_the_last_healthy_server(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    # mrw6: max_restarts 0, final action stop_group of every group on the server
    decision = decide(
        config, "mrw6", make_fault("server2", "HA/RS", "memory"), in_error={"server1", "server3"}
    )
    [command] = decision.commands
    assert (command.final_action, command.group) == (FinalAction.STOP_GROUP, "db")


# --- counts expiring -------------------------------------------------------------------------


def test_counts_expire_after_reset_counts_after_since_the_last_fault(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    # mrw1: reset_counts_after 10m
    state = MonitorServerState(restarts=2, final_action_taken=True, last_fault_at=T0)
    fault = make_fault("server1", "NIC", "eth0")
    early = decide(
        config, "mrw1", fault, state, now=T0 + timedelta(minutes=10) - timedelta(seconds=1)
    )
    assert early.commands == ()
    assert codes(early)[-1] == "MRW-303"
    late = decide(config, "mrw1", fault, state, now=T0 + timedelta(minutes=10))
    assert codes(late)[0] == "MRW-403"
    assert [c.action for c in late.commands] == [Action.RESTART]
    assert (late.state.restarts, late.state.final_action_taken) == (1, False)


def test_counts_without_reset_after_never_expire(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    state = MonitorServerState(failovers=1, final_action_taken=True, last_fault_at=T0)
    decision = decide(
        config, "mrw2", make_fault("server2", "FC", "hba0"), state, now=T0 + timedelta(days=365)
    )
    assert decision.commands == ()
    assert "MRW-403" not in codes(decision)


# --- recovery notices ------------------------------------------------------------------------


def test_recovery_notice_never_causes_a_command(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    notice = make_fault("server1", "NIC", "eth0", state="recovered")
    for state in (NORMAL, MonitorServerState(status=Status.ERROR, restarts=1)):
        decision = decide(config, "mrw1", notice, state)
        assert decision.commands == ()
        assert decision.state == state  # mrw1 has no clear_on_recovery
        assert codes(decision) == ["MRW-501"]


def test_recovery_notice_with_clear_on_recovery_returns_to_normal_keeping_counts(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    notice = make_fault("server2", "FC", "hba0", state="recovered")
    state = MonitorServerState(status=Status.ERROR, failovers=1, faults=3)
    decision = decide(config, "mrw2", notice, state)
    assert decision.commands == ()
    assert decision.state.status is Status.NORMAL
    assert decision.state.failovers == 1
    assert decision.state.faults == 3
    assert codes(decision) == ["MRW-501", "MRW-502"]


def test_recovery_notice_while_normal_changes_nothing(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    notice = make_fault("server2", "FC", "hba0", state="recovered")
    decision = decide(config, "mrw2", notice)
    assert decision.state == NORMAL
    assert codes(decision) == ["MRW-501"]


# --- determinism -----------------------------------------------------------------------------


def test_same_fault_gives_the_same_ids(config: ClusterConfig, make_fault: FaultFactory) -> None:
    fault = make_fault("server2", "FC", "hba0", id="f-42")
    first = decide(config, "mrw2", fault)
    again = decide(config, "mrw2", fault, now=T0 + timedelta(seconds=3))
    assert first.commands
    assert [c.id for c in first.commands] == [c.id for c in again.commands]
    assert [e.id for e in first.events] == [e.id for e in again.events]
    assert len({e.id for e in first.events}) == len(first.events)


def test_different_faults_give_different_ids(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    one = decide(config, "mrw1", make_fault("server1", "NIC", "eth0", id="f-1"))
    two = decide(config, "mrw1", make_fault("server1", "NIC", "eth0", id="f-2"))
    assert one.commands[0].id != two.commands[0].id
    assert not {e.id for e in one.events} & {e.id for e in two.events}


def test_decide_does_not_touch_the_view(config: ClusterConfig, make_fault: FaultFactory) -> None:
    view = ClusterView.initial(config)
    decision = decide(config, "mrw2", make_fault("server2", "FC", "hba0"), view=view)
    assert len(decision.failovers) == 1
    assert view.placement == {"web": "server1", "db": "server2"}
    assert view.moving == set()
