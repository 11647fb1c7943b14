"""An ordered failover, step by step: stop confirmed, then start; fencing; deadlines; results
delivered twice. Driven through `ClusterState`, as the service drives it.

Reminder of the example cluster (tests/unit/conftest.py): web runs on server1, db on server2;
server1 and server2 are site-a, server3 is site-b.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from mrwbus.config.loading import parse_config
from mrwbus.config.model import ClusterConfig
from mrwbus.core.cluster import ClusterState
from mrwbus.core.decision import Decision
from mrwbus.core.monitor import Status
from mrwbus.core.progress import Phase
from mrwbus.messages import (
    Action,
    CommandStep,
    FinalAction,
    Outcome,
)

from ..conftest import T0, FaultFactory
from .test_cluster import SECOND, clear, codes, reaction_codes, result


def test_failover_starts_on_the_destination_only_once_the_stop_is_confirmed(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    decision = cluster.handle_fault("mrw2", make_fault("server2", "FC", "hba0", id="f-1"), T0)
    [stop] = decision.commands
    assert (stop.step, stop.server, stop.to_server) == (CommandStep.STOP, "server2", "server3")
    assert set(cluster.failovers) == {"db"}
    assert cluster.view.moving == {"db"}
    assert cluster.view.placement["db"] == "server2"  # still there until the stop is confirmed
    assert not cluster.view.is_active("db", "server2")

    stopped = cluster.handle_result(result(stop), T0 + 2 * SECOND)
    [start] = stopped.commands
    assert start.action is Action.FAILOVER
    assert (start.step, start.server, start.group) == (CommandStep.START, "server3", "db")
    assert (start.from_server, start.to_server) == ("server2", "server3")
    assert start.fault_id == "f-1"
    assert start.before_script is None  # the before-script runs on the server left only
    assert reaction_codes(stopped) == ["MRW-701", "MRW-201"]
    assert stopped.events[0].monitor == "mrw2"
    assert cluster.view.placement["db"] is None  # stopped, not started yet
    assert cluster.failovers["db"].phase is Phase.STARTING
    assert cluster.failovers["db"].awaiting == start.id

    started = cluster.handle_result(result(start), T0 + 5 * SECOND)
    assert started.commands == ()
    assert reaction_codes(started) == ["MRW-701", "MRW-320"]
    assert cluster.view.placement["db"] == "server3"
    assert cluster.view.moving == set()
    assert cluster.failovers == {}


def test_failover_command_ids_are_deterministic(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    def run() -> list[str]:
        cluster = ClusterState.initial(config)
        fault = make_fault("server2", "FC", "hba0", id="f-7")
        [stop] = cluster.handle_fault("mrw2", fault, T0).commands
        [start] = cluster.handle_result(result(stop), T0).commands
        return [stop.id, start.id]

    first = run()
    assert first == run()
    assert first[0] != first[1]


def test_a_fault_on_a_group_being_failed_over_starts_nothing(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    cluster.handle_fault("mrw2", make_fault("server2", "FC", "hba0"), T0)
    # mrw6 restarts/stops every group on the server; db on server2 is moving
    decision = cluster.handle_fault("mrw6", make_fault("server2", "HA/RS", "mem"), T0)
    assert decision.commands == ()
    assert codes(decision)[-2:] == ["MRW-306", "MRW-301"]
    assert cluster.state_of("mrw6", "server2").final_action_taken is False


def test_stop_not_confirmed_leaves_the_group_where_it_was(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    [stop] = cluster.handle_fault("mrw2", make_fault("server2", "FC", "hba0"), T0).commands
    failed = cluster.handle_result(result(stop, Outcome.FAILED, detail="busy"), T0)
    assert failed.commands == ()
    assert reaction_codes(failed) == ["MRW-702", "MRW-310"]
    assert "busy" in failed.events[0].text
    assert cluster.view.placement["db"] == "server2"
    assert cluster.view.moving == set()
    assert cluster.failovers == {}
    assert cluster.state_of("mrw2", "server2").failovers == 1  # the rung was used


def test_stop_unanswered_until_the_deadline_is_given_up(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    cluster.handle_fault("mrw2", make_fault("server2", "FC", "hba0"), T0)
    deadline = T0 + cluster.config.service.stop_timeout
    early = cluster.tick(deadline - SECOND)
    assert (early.commands, early.events) == ((), ())
    assert set(cluster.failovers) == {"db"}
    late = cluster.tick(deadline)
    assert late.commands == ()
    assert reaction_codes(late) == ["MRW-310"]
    assert cluster.view.placement["db"] == "server2"
    assert cluster.failovers == {}


def test_a_result_delivered_twice_moves_the_failover_once(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    [stop] = cluster.handle_fault("mrw2", make_fault("server2", "FC", "hba0"), T0).commands
    assert len(cluster.handle_result(result(stop), T0).commands) == 1
    again = cluster.handle_result(result(stop), T0)
    assert again.commands == ()
    assert reaction_codes(again) == ["MRW-701"]
    assert cluster.failovers["db"].phase is Phase.STARTING


def test_failed_start_moves_on_to_the_next_server_then_gives_up(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    # mrw5 fails web over within its list: server1 -> server2, then server3
    [stop] = cluster.handle_fault("mrw5", make_fault("server1", "SPS", "dd0"), T0).commands
    [start2] = cluster.handle_result(result(stop), T0).commands
    assert start2.server == "server2"
    retried = cluster.handle_result(result(start2, Outcome.FAILED), T0)
    [start3] = retried.commands
    assert (start3.step, start3.server, start3.to_server) == (
        CommandStep.START,
        "server3",
        "server3",
    )
    assert reaction_codes(retried) == ["MRW-702", "MRW-313", "MRW-201"]
    assert start3.id != start2.id
    gave_up = cluster.handle_result(result(start3, Outcome.TIMED_OUT), T0)
    assert gave_up.commands == ()
    assert reaction_codes(gave_up)[-1] == "MRW-314"
    assert cluster.view.placement["web"] is None
    assert cluster.failovers == {}


def test_start_unconfirmed_leaves_the_group_nowhere(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    [stop] = cluster.handle_fault("mrw2", make_fault("server2", "FC", "hba0"), T0).commands
    cluster.handle_result(result(stop), T0)
    deadline = T0 + cluster.config.service.start_timeout
    assert cluster.tick(deadline - SECOND).events == ()
    late = cluster.tick(deadline)
    assert reaction_codes(late) == ["MRW-315"]
    assert cluster.view.placement["db"] is None
    assert cluster.failovers == {}


@pytest.fixture
def fencing_cluster(cluster_yaml: str) -> ClusterState:
    """mrw2 fencing with a reboot when server2 does not confirm the stop."""
    text = cluster_yaml.replace(
        "      final_action: stop_group\n      before_script",
        "      final_action: reboot\n      fence_first: true\n      before_script",
        1,
    )
    assert text != cluster_yaml
    return ClusterState.initial(parse_config(text))


def test_fence_first_fences_the_silent_source_then_starts_elsewhere(
    fencing_cluster: ClusterState, make_fault: FaultFactory
) -> None:
    cluster = fencing_cluster
    [stop] = cluster.handle_fault("mrw2", make_fault("server2", "FC", "hba0"), T0).commands
    fencing = cluster.tick(T0 + cluster.config.service.stop_timeout)
    [fence] = fencing.commands
    assert (fence.action, fence.final_action) == (Action.FINAL_ACTION, FinalAction.REBOOT)
    assert (fence.server, fence.group) == ("server2", "db")
    assert reaction_codes(fencing) == ["MRW-311"]
    assert cluster.failovers["db"].phase is Phase.FENCING
    assert cluster.view.placement["db"] == "server2"  # not known to be stopped yet
    assert cluster.handle_result(result(stop), T0).commands == ()  # too late: ignored
    [start] = cluster.handle_result(result(fence), T0).commands
    assert (start.step, start.server) == (CommandStep.START, "server3")
    assert cluster.view.placement["db"] is None


def test_failed_fencing_starts_nothing(
    fencing_cluster: ClusterState, make_fault: FaultFactory
) -> None:
    cluster = fencing_cluster
    [stop] = cluster.handle_fault("mrw2", make_fault("server2", "FC", "hba0"), T0).commands
    [fence] = cluster.handle_result(result(stop, Outcome.REFUSED), T0).commands
    failed = cluster.handle_result(result(fence, Outcome.FAILED), T0)
    assert failed.commands == ()
    assert reaction_codes(failed)[-1] == "MRW-312"
    assert cluster.view.placement["db"] == "server2"
    assert cluster.failovers == {}


def test_failover_completes_then_later_faults_see_the_new_placement(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    [stop] = cluster.handle_fault("mrw2", make_fault("server2", "FC", "hba0"), T0).commands
    [start] = cluster.handle_result(result(stop), T0).commands
    cluster.handle_result(result(start), T0)
    clear(cluster, "mrw2", "server2")
    # db is no longer on server2
    again = cluster.handle_fault("mrw2", make_fault("server2", "FC", "hba1"), T0)
    assert again.commands == ()
    assert codes(again)[-1] == "MRW-301"
    # an FC fault on server3 fails db back to site-a; server2 still has mrw2 in Error
    [back] = cluster.handle_fault("mrw2", make_fault("server3", "FC", "hba0"), T0).commands
    assert (back.server, back.to_server) == ("server3", "server1")
    assert cluster.state_of("mrw2", "server3").failovers == 1


def test_recovery_notice_with_clear_on_recovery_then_next_fault_continues_the_ladder(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    [stop] = cluster.handle_fault("mrw2", make_fault("server2", "FC", "hba0"), T0).commands
    cluster.handle_result(result(stop, Outcome.FAILED), T0)  # db stays on server2
    notice = cluster.handle_fault(
        "mrw2", make_fault("server2", "FC", "hba0", state="recovered"), T0
    )
    assert notice.commands == ()
    assert cluster.state_of("mrw2", "server2").status is Status.NORMAL
    assert cluster.state_of("mrw2", "server2").failovers == 1
    final = cluster.handle_fault("mrw2", make_fault("server2", "FC", "hba0"), T0)
    assert [(c.action, c.final_action, c.group) for c in final.commands] == [
        (Action.FINAL_ACTION, FinalAction.STOP_GROUP, "db")
    ]
    assert cluster.view.placement["db"] is None


def test_expired_final_action_can_be_taken_again(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    # mrw5: fail web over twice, then final action none; reset_counts_after 90s.
    # Each stop fails, so web stays on server1 and the ladder climbs on server1.
    def fault(at: datetime) -> Decision:
        return cluster.handle_fault("mrw5", make_fault("server1", "SPS", "dd0"), at)

    for _ in range(2):
        [stop] = fault(T0).commands
        cluster.handle_result(result(stop, Outcome.FAILED), T0)
        clear(cluster, "mrw5", "server1")
    assert codes(fault(T0))[-1] == "MRW-304"
    clear(cluster, "mrw5", "server1")
    assert codes(fault(T0 + 89 * SECOND))[-1] == "MRW-303"
    clear(cluster, "mrw5", "server1")
    expired = fault(T0 + 179 * SECOND)  # 90 s after the previous fault
    assert codes(expired)[0] == "MRW-403"
    assert [c.step for c in expired.commands] == [CommandStep.STOP]
    assert cluster.state_of("mrw5", "server1").failovers == 1


def test_a_stop_confirmed_by_another_server_starts_nothing_anywhere(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    [stop] = cluster.handle_fault("mrw2", make_fault("server2", "FC", "hba0"), T0).commands
    forged = result(stop).model_copy(update={"server": "server3", "id": "forged"})
    assert cluster.result_refusal(forged) is not None
    refused = cluster.handle_result(forged, T0 + SECOND)
    assert refused.commands == () and refused.moves == {}
    assert reaction_codes(refused) == ["MRW-903"]
    assert refused.events[0].detail["expected"] == "server2"
    assert cluster.view.placement["db"] == "server2"
    assert cluster.failovers["db"].phase is Phase.STOPPING
    # The server the stop was sent to still moves it on.
    assert cluster.result_refusal(result(stop)) is None
    [start] = cluster.handle_result(result(stop), T0 + 2 * SECOND).commands
    assert start.server == "server3"


def test_after_a_restart_the_awaited_step_still_takes_its_result_only_from_its_server(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    [stop] = cluster.handle_fault("mrw2", make_fault("server2", "FC", "hba0"), T0).commands
    cluster.issued.clear()  # a restarted service holds its failovers, not every command
    forged = result(stop).model_copy(update={"server": "server1", "id": "forged"})
    assert reaction_codes(cluster.handle_result(forged, T0)) == ["MRW-903"]
    assert cluster.failovers["db"].phase is Phase.STOPPING
