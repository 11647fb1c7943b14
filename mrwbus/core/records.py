"""The service's state as records for its journal: `(namespace, key, value)`, last write wins.

A journal entry is a list of records; a snapshot is every record at once; replaying entries on
top of a snapshot gives the state back. A value of None deletes the key. Pure: no I/O.

| namespace | key | value |
| --- | --- | --- |
| monitor | `<monitor>/<server>` | the monitor's state on that server |
| suspended | monitor | true |
| placement | group | `{"on": server or null}` |
| moving | group | true |
| alive | server | true or false |
| seen | server | when its agent was last heard from |
| reported | server | the groups its agent last reported |
| failover | group | the failover in progress |
| fence | server | the fence of that server under way |
| down | server | how, when and by whom it was fenced or taken down |
| decided | `<monitor>/<fault id>` | the commands and events of a decision, and whether confirmed |
| outbox | reaction id | commands and events applied to the state, not yet confirmed |
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from mrwbus.config.model import ClusterConfig
from mrwbus.core.cluster import ClusterState
from mrwbus.core.decision import CONFIRMED, Decision
from mrwbus.core.monitor import MonitorServerState
from mrwbus.core.progress import Down, FailoverInProgress, FenceIncident
from mrwbus.messages import NO_MONITOR

Record = tuple[str, str, Any]
Records = dict[str, dict[str, Any]]

MONITOR, SUSPENDED, PLACEMENT, MOVING = "monitor", "suspended", "placement", "moving"
ALIVE, SEEN, REPORTED, FAILOVER = "alive", "seen", "reported", "failover"
FENCE, DOWN = "fence", "down"
DECIDED, OUTBOX = "decided", "outbox"

SHARED = (SUSPENDED, PLACEMENT, MOVING, ALIVE, SEEN, REPORTED, FAILOVER, FENCE, DOWN)
"""Namespaces any operation may change; compared against the last journaled copy."""

REMEMBERED_DECISIONS = 20_000
"""Decided faults a snapshot keeps, newest first, so a redelivered fault is never decided twice."""

_monitor_state = TypeAdapter(MonitorServerState)
_failover = TypeAdapter(FailoverInProgress)
_fence = TypeAdapter(FenceIncident)
_down = TypeAdapter(Down)


def monitor_key(monitor: str, server: str) -> str:
    return f"{monitor}/{server}"


def monitor_record(cluster: ClusterState, monitor: str, server: str) -> Record:
    state = cluster.state_of(monitor, server)
    return (MONITOR, monitor_key(monitor, server), _monitor_state.dump_python(state, mode="json"))


def _shared_sources(cluster: ClusterState) -> dict[str, Collection[str]]:
    """Where each shared namespace lives in the state: a dict (key -> value) or a set (its
    members are the keys)."""
    view = cluster.view
    return {
        SUSPENDED: cluster.suspended,
        PLACEMENT: view.placement,
        MOVING: view.moving,
        ALIVE: view.alive,
        SEEN: view.last_seen,
        REPORTED: view.reported,
        FAILOVER: cluster.failovers,
        FENCE: cluster.fences,
        DOWN: view.down,
    }


_ENCODE: dict[str, Callable[[Any], Any]] = {
    PLACEMENT: lambda server: {"on": server},
    SEEN: lambda seen: seen.isoformat(),
    REPORTED: sorted,
    FAILOVER: lambda progress: _failover.dump_python(progress, mode="json"),
    FENCE: lambda incident: _fence.dump_python(incident, mode="json"),
    DOWN: lambda down: _down.dump_python(down, mode="json"),
}
"""How a value of a dict namespace is journaled (the set namespaces journal `True`)."""


def _copy(source: Collection[str]) -> Collection[str]:
    return dict(source) if isinstance(source, dict) else frozenset(source)


def _set_changes(
    cluster: ClusterState, namespace: str, before: Collection[str], after: Collection[str]
) -> list[Record]:
    if namespace == ALIVE:  # every configured server, true or false
        return [
            (ALIVE, server, server in after)
            for server in cluster.config.servers
            if (server in before) != (server in after)
        ]
    return [(namespace, key, True) for key in sorted(set(after) - set(before))] + [
        (namespace, key, None) for key in sorted(set(before) - set(after))
    ]


def _dict_changes(namespace: str, before: dict[str, Any], after: dict[str, Any]) -> list[Record]:
    encode = _ENCODE[namespace]
    found: list[Record] = [
        (namespace, key, encode(value))
        for key, value in after.items()
        if key not in before or before[key] != value
    ]
    return found + [(namespace, key, None) for key in before if key not in after]


def shared_records(cluster: ClusterState) -> Records:
    """Every shared record as of now: what the tracker's changes add up to."""
    found: Records = {}
    for namespace, source in _shared_sources(cluster).items():
        if namespace == ALIVE:
            found[namespace] = {server: server in source for server in cluster.config.servers}
        elif isinstance(source, dict):
            encode = _ENCODE[namespace]
            found[namespace] = {key: encode(value) for key, value in source.items()}
        else:
            found[namespace] = dict.fromkeys(sorted(source), True)
    return found


@dataclass
class ChangeTracker:
    """Turns what changed in a `ClusterState` since the last call into records.

    The shared namespaces are compared as they live in the state against a copy of the last
    journaled, container against container first: a reaction costs what it changed, not the
    size of the cluster (rebuilding every record of 400 groups took 85 µs a reaction)."""

    last: dict[str, Collection[str]] = field(default_factory=dict)
    """Each shared namespace's source as last journaled."""

    @classmethod
    def starting_from(cls, cluster: ClusterState) -> ChangeTracker:
        cluster.dirty.clear()
        return cls(
            {namespace: _copy(source) for namespace, source in _shared_sources(cluster).items()}
        )

    def changes(self, cluster: ClusterState, *, shared: bool = True) -> list[Record]:
        found = [
            monitor_record(cluster, monitor, server) for monitor, server in sorted(cluster.dirty)
        ]
        cluster.dirty.clear()
        if shared:
            for namespace, source in _shared_sources(cluster).items():
                before = self.last[namespace]
                if source == before:  # compared in C, element by element
                    continue
                if isinstance(source, dict):
                    assert isinstance(before, dict)
                    found += _dict_changes(namespace, before, source)
                else:
                    found += _set_changes(cluster, namespace, before, source)
                self.last[namespace] = _copy(source)
        return found


@dataclass
class RestoredState:
    """What a journal gives back: the cluster state, each monitor's decided faults, the outbox."""

    cluster: ClusterState
    decided: dict[str, OrderedDict[str, Decision]]
    outbox: OrderedDict[str, Decision]


class RecordSet:
    """Every record, as replay builds it: a snapshot plus the entries after it."""

    def __init__(self, records: Records | None = None) -> None:
        self.records: Records = {
            namespace: dict(values) for namespace, values in (records or {}).items()
        }

    def apply(self, records: Iterable[Record]) -> None:
        for namespace, key, value in records:
            values = self.records.setdefault(namespace, {})
            if value is None:
                values.pop(key, None)
            else:
                values.pop(key, None)  # re-inserted last: `decided` keeps its age order
                values[key] = value
        decided = self.records.get(DECIDED, {})
        while len(decided) > REMEMBERED_DECISIONS:
            del decided[next(iter(decided))]  # the oldest

    def export(self) -> Records:
        """All records (`apply` keeps only the newest decisions)."""
        return {namespace: dict(values) for namespace, values in self.records.items()}

    def restore(self, config: ClusterConfig) -> RestoredState:
        """The state these records describe, for this configuration; what the configuration no
        longer has (a monitor, server or group removed) is dropped."""
        cluster = ClusterState.for_config(config)
        view = cluster.view
        get = self.records.get
        for key, value in get(MONITOR, {}).items():
            monitor, _, server = key.partition("/")
            if (monitor, server) in cluster.monitors:
                cluster.monitors[(monitor, server)] = _monitor_state.validate_python(value)
        cluster.suspended = {
            monitor for monitor in get(SUSPENDED, {}) if monitor in config.monitors
        }
        for group, value in get(PLACEMENT, {}).items():
            if group in config.groups and (value["on"] is None or value["on"] in config.servers):
                view.placement[group] = value["on"]
        view.moving = {group for group in get(MOVING, {}) if group in config.groups}
        for server, alive in get(ALIVE, {}).items():
            if server in config.servers and not alive:
                view.alive.discard(server)
        view.last_seen = {
            server: datetime.fromisoformat(seen)
            for server, seen in get(SEEN, {}).items()
            if server in config.servers
        }
        view.reported = {
            server: frozenset(g for g in groups if g in config.groups)
            for server, groups in get(REPORTED, {}).items()
            if server in config.servers
        }
        for group, value in get(FAILOVER, {}).items():
            progress = _failover.validate_python(value)
            if group in config.groups and progress.monitor in (*config.monitors, NO_MONITOR):
                cluster.failovers[group] = progress
        for server, value in get(FENCE, {}).items():
            if config.bmc_of(server) is not None:
                cluster.fences[server] = _fence.validate_python(value)
        for server, value in get(DOWN, {}).items():
            if server in config.servers:
                view.down[server] = _down.validate_python(value)
                view.alive.discard(server)
        view.moving &= set(cluster.failovers)
        decided: dict[str, OrderedDict[str, Decision]] = {}
        for key, value in get(DECIDED, {}).items():
            monitor, _, fault_id = key.partition("/")
            decision = Decision.from_value(value)
            decided.setdefault(monitor, OrderedDict())[fault_id] = decision
            for command in decision.commands:
                cluster.issued[command.id] = command
        outbox = OrderedDict(
            (key, Decision.from_value(value)) for key, value in get(OUTBOX, {}).items()
        )
        cluster.reindex()
        return RestoredState(cluster, decided, outbox)


def decided_record(monitor: str, fault_id: str, decision: Decision) -> Record:
    """A decision; once confirmed only the fact is kept (its messages are out, and small
    snapshots matter more than republishing what the broker already has)."""
    return (
        DECIDED,
        f"{monitor}/{fault_id}",
        (CONFIRMED if decision.confirmed else decision).to_value(),
    )


def outbox_records(reaction_id: str, decision: Decision | None) -> Iterator[Record]:
    yield (OUTBOX, reaction_id, decision.to_value() if decision is not None else None)
