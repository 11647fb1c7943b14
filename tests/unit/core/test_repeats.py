"""Faults for a monitor already in Error: every one counted and journaled, reported by one
summary event per `service.repeat_summary_interval` (issue 14: a storm is no event storm)."""

from __future__ import annotations

from datetime import timedelta

from mrwbus.config.model import ClusterConfig
from mrwbus.core import operator_verbs
from mrwbus.core.cluster import ClusterState
from mrwbus.core.monitor import Status
from tests.unit.operate import operate

from ..conftest import T0, FaultFactory

SECOND = timedelta(seconds=1)


def in_error(cluster: ClusterState, make_fault: FaultFactory) -> None:
    first = cluster.handle_fault("mrw1", make_fault("server1", "NIC", "eth0"), T0)
    assert first.commands
    assert cluster.state_of("mrw1", "server1").status is Status.ERROR


def codes(events: object) -> list[str]:
    return [event.code for event in events]  # type: ignore[attr-defined]


def test_the_first_repeat_is_reported_the_rest_counted_quietly(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    in_error(cluster, make_fault)
    first = cluster.handle_fault("mrw1", make_fault("server1", "NIC", "eth0"), T0 + SECOND)
    assert codes(first.events) == ["MRW-101", "MRW-103"]
    for n in range(5):
        quiet = cluster.handle_fault(
            "mrw1", make_fault("server1", "NIC", f"eth{n}"), T0 + 2 * SECOND
        )
        assert quiet.events == () and quiet.commands == ()
        assert quiet.state is not None and quiet.state.unreported == n + 1
    state = cluster.state_of("mrw1", "server1")
    assert state.faults == 7  # nothing dropped from the counts or the status
    assert state.last_device == "eth4"


def test_a_fault_after_the_interval_reports_every_unreported_one(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    in_error(cluster, make_fault)
    cluster.handle_fault("mrw1", make_fault("server1", "NIC", "eth0"), T0 + SECOND)
    for _ in range(3):
        cluster.handle_fault("mrw1", make_fault("server1", "NIC", "eth1"), T0 + 2 * SECOND)
    due = cluster.handle_fault("mrw1", make_fault("server1", "NIC", "eth2"), T0 + 11 * SECOND)
    assert codes(due.events) == ["MRW-106"]
    summary = due.events[0]
    assert summary.detail["count"] == 4
    assert summary.detail["device"] == "eth2"
    assert "4 more errors on server1 in the last 10 s" in summary.text
    assert due.state is not None and due.state.unreported == 0
    assert due.commands == ()


def test_the_tick_reports_repeats_no_later_fault_reported(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    in_error(cluster, make_fault)
    cluster.handle_fault("mrw1", make_fault("server1", "NIC", "eth0"), T0 + SECOND)
    cluster.handle_fault("mrw1", make_fault("server1", "NIC", "eth0"), T0 + 2 * SECOND)
    assert cluster.tick(T0 + 5 * SECOND).events == ()
    tick = cluster.tick(T0 + 11 * SECOND)
    assert codes(tick.events) == ["MRW-106"]
    assert tick.events[0].detail["count"] == 1
    assert ("mrw1", "server1") in cluster.dirty  # the reported state is journaled
    assert cluster.state_of("mrw1", "server1").unreported == 0
    assert cluster.tick(T0 + 30 * SECOND).events == ()


def test_a_new_error_reports_its_first_repeat_again(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    in_error(cluster, make_fault)
    cluster.handle_fault("mrw1", make_fault("server1", "NIC", "eth0"), T0 + SECOND)
    operate(
        cluster,
        operator_verbs.clear,
        "mrw1",
        "server1",
        reset_counts=True,
        by="op",
        now=T0 + SECOND,
        cause="c",
    )
    cluster.handle_fault("mrw1", make_fault("server1", "NIC", "eth0"), T0 + 2 * SECOND)
    again = cluster.handle_fault("mrw1", make_fault("server1", "NIC", "eth0"), T0 + 3 * SECOND)
    assert codes(again.events) == ["MRW-101", "MRW-103"]


def test_null_interval_reports_every_repeat(
    config: ClusterConfig, make_fault: FaultFactory
) -> None:
    every = config.model_copy(
        update={"service": config.service.model_copy(update={"repeat_summary_interval": None})}
    )
    cluster = ClusterState.initial(every)
    in_error(cluster, make_fault)
    for _ in range(3):
        repeat = cluster.handle_fault("mrw1", make_fault("server1", "NIC", "eth0"), T0 + SECOND)
        assert codes(repeat.events) == ["MRW-101", "MRW-103"]
