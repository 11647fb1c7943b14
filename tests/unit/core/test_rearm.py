"""`recovery.rearm_after`: a ladder that climbs without recovery notices."""

from __future__ import annotations

from datetime import timedelta

from mrwbus.core.monitor import Status

from ..conftest import T0
from .pg import fault, pg_cluster, succeeded

S = timedelta(seconds=1)


def test_flapping_climbs_restart_restart_final_action() -> None:
    cluster = pg_cluster()
    now = T0
    taken = []
    for n in range(3):
        decision = cluster.handle_fault("sps", fault("db1", "SPS", "sps0", n), now)
        assert decision.step is not None
        taken.append(decision.step.text)
        cluster.handle_result(succeeded(decision.commands[0]), now + S)
        assert [e.code for e in cluster.tick(now + 2 * S).events] == []  # not yet
        rearmed = cluster.tick(now + 3 * S)
        if n < 2:
            assert [e.code for e in rearmed.events] == ["MRW-503"]
            assert cluster.state_of("sps", "db1").status is Status.NORMAL
        now += 10 * S
    assert taken == [
        "restart 1 of 2",
        "restart 2 of 2",
        "final action shutdown (restarts used up: 2 of 2)",
    ]
    assert cluster.state_of("sps", "db1").restarts == 2  # counts kept


def test_a_new_fault_while_in_error_delays_the_rearm() -> None:
    cluster = pg_cluster()
    decision = cluster.handle_fault("sps", fault("db1", "SPS", "sps0", 1), T0)
    cluster.handle_result(succeeded(decision.commands[0]), T0)
    cluster.handle_fault("sps", fault("db1", "SPS", "sps0", 2), T0 + S)  # MRW-103
    assert cluster.tick(T0 + 2 * S).events == ()
    assert [e.code for e in cluster.tick(T0 + 3 * S).events] == ["MRW-503"]


def test_without_a_succeeded_recovery_nothing_rearms() -> None:
    cluster = pg_cluster()
    cluster.handle_fault("sps", fault("db1", "SPS", "sps0", 1), T0)
    assert cluster.tick(T0 + 60 * S).events == ()
    assert cluster.state_of("sps", "db1").status is Status.ERROR


def test_the_default_keeps_the_error() -> None:
    cluster = pg_cluster()
    nic = cluster.handle_fault("nic", fault("db1", "NIC", "eth0", 1), T0)  # no rearm_after
    stop = nic.commands[0]
    start = cluster.handle_result(succeeded(stop), T0).commands[0]
    cluster.handle_result(succeeded(start), T0)
    assert cluster.tick(T0 + 600 * S).events == ()
    assert cluster.state_of("nic", "db1").status is Status.ERROR
