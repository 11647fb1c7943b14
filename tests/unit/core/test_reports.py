"""What a report teaches (`core.reports`): facts always count, beliefs when they change."""

from __future__ import annotations

from mrwbus.core import events, operator_verbs
from tests.unit.operate import operate

from ..conftest import T0
from .pg import pg_cluster, report


def test_a_probe_that_contradicts_the_belief_moves_the_group_with_an_event() -> None:
    cluster = pg_cluster()
    assert cluster.view.placement["pg"] == "db1"
    first = cluster.handle_report(report("db1", probed=("pg",)), T0)
    [event] = first.events
    assert event.code == events.REPORT_CONTRADICTS.code
    assert event.text == "pg: the agent of db1 reports it not running; placement db1 -> nowhere."
    cluster.handle_report(report("db2", "pg", probed=("pg",)), T0)
    assert cluster.view.placement["pg"] == "db2"


def test_a_repeated_belief_does_not_undo_an_operators_place() -> None:
    cluster = pg_cluster()
    cluster.handle_report(report("db1", "pg"), T0)
    cluster.handle_report(report("db2"), T0)
    operate(
        cluster, operator_verbs.place, "pg", "db2", reason="checked", by="op", now=T0, cause="r1"
    )
    cluster.handle_report(report("db1", "pg", n=1), T0)  # the same belief again
    cluster.handle_report(report("db2", n=1), T0)
    assert cluster.view.placement["pg"] == "db2"


def test_a_probed_fact_undoes_a_wrong_place() -> None:
    cluster = pg_cluster()
    cluster.handle_report(report("db1", "pg", probed=("pg",)), T0)
    operate(
        cluster, operator_verbs.place, "pg", "db2", reason="mistake", by="op", now=T0, cause="r1"
    )
    cluster.handle_report(report("db1", "pg", probed=("pg",), n=1), T0)
    assert cluster.view.placement["pg"] == "db1"
