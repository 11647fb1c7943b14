"""`service.exclude_destinations`: which monitors in Error disqualify a server."""

from __future__ import annotations

from mrwbus.core.progress import Phase
from tests.unit.operate import clear

from ..conftest import T0
from .pg import fault, pg_cluster


def test_any_error_blocks_the_failover_and_names_the_rule() -> None:
    cluster = pg_cluster()
    cluster.handle_fault("hba2", fault("db2", "FC", "hba2", 1), T0)
    decision = cluster.handle_fault("nic", fault("db1", "NIC", "eth0", 2), T0)
    assert decision.commands == ()
    [refused] = [event for event in decision.events if event.code == "MRW-302"]
    assert "(exclude_destinations: any_error)" in refused.text


def test_same_monitor_ignores_an_unrelated_error() -> None:
    cluster = pg_cluster(exclude_destinations="same_monitor")
    cluster.handle_fault("hba2", fault("db2", "FC", "hba2", 1), T0)
    decision = cluster.handle_fault("nic", fault("db1", "NIC", "eth0", 2), T0)
    assert cluster.failovers["pg"].to_server == "db2"
    assert cluster.failovers["pg"].phase is Phase.STOPPING
    assert decision.commands[0].server == "db1"


def test_same_monitor_still_blocks_where_that_monitor_is_in_error() -> None:
    cluster = pg_cluster(exclude_destinations="same_monitor")
    cluster.handle_fault("nic", fault("db2", "NIC", "eth0", 1), T0)  # pg not on db2: Error only
    decision = cluster.handle_fault("nic", fault("db1", "NIC", "eth0", 2), T0)
    [refused] = [event for event in decision.events if event.code == "MRW-302"]
    assert "the same monitor is in Error there (exclude_destinations: same_monitor)" in refused.text


def test_the_last_healthy_server_follows_the_rule_too() -> None:
    cluster = pg_cluster()
    cluster.handle_fault("hba2", fault("db2", "FC", "hba2", 1), T0)
    for n in range(3):
        decision = cluster.handle_fault("sps", fault("db1", "SPS", "sps0", 10 + n), T0)
        clear(cluster, "sps", "db1", cause=f"c{n}")
    [suppressed] = [event for event in decision.events if event.code == "MRW-305"]
    assert "last healthy server" in suppressed.text and "any_error" in suppressed.text

    relaxed = pg_cluster(exclude_destinations="same_monitor")
    relaxed.handle_fault("hba2", fault("db2", "FC", "hba2", 1), T0)
    for n in range(3):
        decision = relaxed.handle_fault("sps", fault("db1", "SPS", "sps0", 10 + n), T0)
        clear(relaxed, "sps", "db1", cause=f"c{n}")
    assert [c.final_action for c in decision.commands] == ["shutdown"]
