"""The journal's records of the shared state (`core.records`): the change tracker diffs the
state's own containers against its last copy; what it emits, applied in order, must always
add up to every record rebuilt from scratch, whatever changed in between."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mrwbus.config.loading import parse_config
from mrwbus.core.cluster import ClusterState
from mrwbus.core.progress import Down, FailoverInProgress, FenceIncident, Phase
from mrwbus.core.records import SHARED, ChangeTracker, RecordSet, shared_records
from mrwbus.messages import FenceAction

from ..conftest import T0

SERVERS = ("s1", "s2", "s3")
GROUPS = ("g1", "g2", "g3")


def cluster() -> ClusterState:
    config = parse_config(
        """
servers: {s1: {}, s2: {}, s3: {}}
groups:
  g1: {servers: [s1, s2]}
  g2: {servers: [s2, s3]}
  g3: {servers: [s3, s1]}
monitors:
  m1: {category: NIC, recovery: {action: restart, target: g1}}
  m2: {category: FC, recovery: {action: failover, target: g2}}
"""
    )
    return ClusterState.for_config(config)


def failover(group: str, n: int) -> FailoverInProgress:
    return FailoverInProgress(
        group=group,
        monitor="m2",
        fault_id=f"f{n}",
        from_server="s1",
        to_server="s2",
        phase=Phase.STOPPING,
        awaiting=f"c{n}",
        deadline=T0 + timedelta(seconds=n),
    )


def fence(server: str, n: int) -> FenceIncident:
    return FenceIncident(
        id=f"i{n}",
        target=server,
        action=FenceAction.OFF,
        cause="silent",
        reason="silent",
        recover_groups=True,
        deadline=T0 + timedelta(seconds=n),
        rounds=n % 3,
    )


def change(state: ClusterState, what: str, key: int, n: int) -> None:
    """One change to one shared container, as the core makes them (in place or replaced)."""
    view, server, group = state.view, SERVERS[key % 3], GROUPS[key % 3]
    if what == "place":
        view.placement[group] = None if n % 4 == 0 else SERVERS[n % 3]
    elif what == "move":
        (view.moving.add if n % 2 else view.moving.discard)(group)
    elif what == "alive":
        (view.alive.add if n % 2 else view.alive.discard)(server)
    elif what == "seen":
        view.last_seen[server] = T0 + timedelta(seconds=n % 5)
    elif what == "report":
        view.reported[server] = frozenset(GROUPS[: n % 4])
    elif what == "suspend":
        (state.suspended.add if n % 2 else state.suspended.discard)(f"m{1 + key % 2}")
    elif what == "failover":
        if n % 3 == 0:
            state.failovers.pop(group, None)
        else:
            state.failovers[group] = failover(group, n % 4)
    elif what == "fence":
        if n % 3 == 0:
            state.fences.pop(server, None)
        else:
            state.fences[server] = fence(server, n % 4)
    elif what == "down":
        if n % 2 == 0:
            view.down.pop(server, None)
        else:
            view.down[server] = Down(how="fenced", at=T0 + timedelta(seconds=n % 3), by="s2")


CHANGES = st.lists(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["place", "move", "alive", "seen", "report", "suspend", "failover", "fence", "down"]
            ),
            st.integers(0, 2),
            st.integers(0, 11),
        ),
        max_size=4,
    ),
    max_size=12,
)


def as_records(records: dict[str, dict[str, Any]]) -> list[tuple[str, str, Any]]:
    return [
        (namespace, key, value)
        for namespace, values in records.items()
        for key, value in values.items()
    ]


@settings(max_examples=300, deadline=None)
@given(CHANGES)
def test_the_changes_add_up_to_every_record_rebuilt(
    steps: list[list[tuple[str, int, int]]],
) -> None:
    state = cluster()
    tracker = ChangeTracker.starting_from(state)
    journaled = RecordSet()
    journaled.apply(as_records(shared_records(state)))
    for step in steps:
        for what, key, n in step:
            change(state, what, key, n)
        found = tracker.changes(state)
        assert len({(namespace, key) for namespace, key, _ in found}) == len(found)  # once each
        journaled.apply(found)
        expected = shared_records(state)
        assert {namespace: journaled.records.get(namespace, {}) for namespace in SHARED} == {
            namespace: expected[namespace] for namespace in SHARED
        }


def test_nothing_changed_is_no_record_and_a_fault_decision_may_skip_the_shared_state() -> None:
    state = cluster()
    tracker = ChangeTracker.starting_from(state)
    assert tracker.changes(state) == []
    state.view.placement["g1"] = "s2"
    assert tracker.changes(state, shared=False) == []  # left for the next shared look
    assert tracker.changes(state) == [("placement", "g1", {"on": "s2"})]
    assert tracker.changes(state) == []


def test_a_group_placed_nowhere_is_a_record_not_a_deletion() -> None:
    state = cluster()
    tracker = ChangeTracker.starting_from(state)
    state.view.placement["g1"] = None
    assert tracker.changes(state) == [("placement", "g1", {"on": None})]
    state.view.alive.discard("s3")
    assert tracker.changes(state) == [("alive", "s3", False)]
