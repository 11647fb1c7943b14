"""Groups follow a server that a final action took down (`core.downed`), through ClusterState."""

from __future__ import annotations

from mrwbus.core.cluster import ClusterState
from mrwbus.messages import Action, CommandStep, FinalAction, Outcome
from tests.unit.operate import clear

from ..conftest import T0
from .pg import fault, pg_cluster, succeeded


def shut_down_db1(cluster: ClusterState) -> list:  # type: ignore[type-arg]
    """Three SPS faults on db1, each after the monitor went back to Normal: the third is the
    final action; returns its commands."""
    for n in range(3):
        decision = cluster.handle_fault("sps", fault("db1", "SPS", "sps0", n), T0)
        if n < 2:
            cluster.handle_result(succeeded(decision.commands[0]), T0)
            clear(cluster, "sps", "db1", cause=f"c{n}")
    return list(decision.commands)


def test_a_succeeded_shutdown_starts_the_group_on_the_next_server() -> None:
    cluster = pg_cluster()
    [shutdown] = shut_down_db1(cluster)
    assert shutdown.final_action is FinalAction.SHUTDOWN
    assert cluster.failovers == {}  # nothing moves before the shutdown is confirmed
    decision = cluster.handle_result(succeeded(shutdown), T0)
    codes = [event.code for event in decision.events]
    assert codes == ["MRW-701", "MRW-321", "MRW-201"]
    [start] = decision.commands
    assert (start.action, start.step, start.server) == (Action.FAILOVER, CommandStep.START, "db2")
    assert (start.category, start.device, start.from_server) == ("SPS", "sps0", "db1")
    assert cluster.view.placement["pg"] is None and "pg" in cluster.view.moving
    done = cluster.handle_result(succeeded(start), T0)
    assert "MRW-320" in [event.code for event in done.events]
    assert cluster.view.placement["pg"] == "db2"


def test_a_failed_shutdown_moves_nothing() -> None:
    cluster = pg_cluster()
    [shutdown] = shut_down_db1(cluster)
    decision = cluster.handle_result(succeeded(shutdown, Outcome.FAILED), T0)
    assert decision.commands == () and cluster.view.placement["pg"] == "db1"


def test_no_server_left_leaves_the_group_nowhere_and_says_why() -> None:
    cluster = pg_cluster()
    cluster.view.alive.discard("db2")
    cluster.protect_last_healthy_server = False
    [shutdown] = shut_down_db1(cluster)
    decision = cluster.handle_result(succeeded(shutdown), T0)
    [stranded] = [event for event in decision.events if event.code == "MRW-322"]
    assert "db2: not alive" in stranded.text
    assert cluster.view.placement["pg"] is None


def test_move_groups_after_final_action_off_leaves_the_group() -> None:
    cluster = pg_cluster(", move_groups_after_final_action: false")
    [shutdown] = shut_down_db1(cluster)
    assert cluster.handle_result(succeeded(shutdown), T0).commands == ()
    assert cluster.view.placement["pg"] == "db1"


def test_every_step_carries_the_faults_facts() -> None:
    cluster = pg_cluster()
    [stop] = cluster.handle_fault("nic", fault("db1", "NIC", "eth0", 7), T0).commands
    [start] = cluster.handle_result(succeeded(stop), T0).commands
    for command in (stop, start):
        assert (command.category, command.device) == ("NIC", "eth0")
    [shutdown] = shut_down_db1(pg_cluster())
    assert (shutdown.category, shutdown.device) == ("SPS", "sps0")
