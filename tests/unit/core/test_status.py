"""What an operator sees: shown statuses and the status report (`core.status`)."""

from __future__ import annotations

from mrwbus.core import operator_verbs
from mrwbus.core.cluster import ClusterState
from mrwbus.core.status import shown_status, status_report
from tests.unit.operate import operate

from ..conftest import T0, FaultFactory
from .test_cluster import report


def test_the_status_shows_the_node_each_agent_reported(cluster: ClusterState) -> None:
    cluster.handle_report(report("server3", "web").model_copy(update={"node": "b:5672"}), T0)
    rows = {row.server: row.agent_node for row in status_report(cluster).servers}
    assert rows["server3"] == "b:5672" and rows["server1"] is None


def test_shown_status(cluster: ClusterState, make_fault: FaultFactory) -> None:
    cluster.handle_fault("mrw1", make_fault("server1", "NIC", "eth0"), T0)
    operate(cluster, operator_verbs.suspend, "mrw3", by="operator", now=T0, cause="s")
    assert shown_status(cluster, "mrw1", "server1") == "Error"
    assert shown_status(cluster, "mrw1", "server2") == "Normal"
    assert shown_status(cluster, "mrw3", "server1") == "Suspended"
    assert shown_status(cluster, "mrw5", "server2") == "Offline"  # web-ip is not on server2
    assert shown_status(cluster, "mrw5", "server1") == "Normal"
    snapshot = status_report(cluster)
    row = next(r for r in snapshot.monitors if (r.monitor, r.server) == ("mrw1", "server1"))
    assert (row.status, row.restarts, row.faults) == ("Error", 1, 1)
    assert len(snapshot.monitors) == len(cluster.monitors)
    assert [(g.group, g.server) for g in snapshot.groups] == [
        ("db", "server2"),
        ("web", "server1"),
    ]
    assert [(s.server, s.server_group, s.alive) for s in snapshot.servers] == [
        ("server1", "site-a", True),
        ("server2", "site-a", True),
        ("server3", "site-b", True),
    ]
