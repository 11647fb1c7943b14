"""Operators' requests answered from the state (`control.handle_control`): `place`, and
dead-letter operations that become events naming who asked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mrwbus.config.loading import parse_config
from mrwbus.core.cluster import ClusterState
from mrwbus.messages import ControlReply, ControlRequest, ControlVerb, Event, EventKind
from mrwbus.messages.bus import DeadLetterNote
from mrwbus.service.answers import handle_control

from .conftest import T0
from .core.pg import fault, pg_cluster

NOW = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)
CONFIG = """
servers: {s1: {}}
groups: {g1: {servers: [s1]}}
monitors: {m1: {category: NIC, recovery: {action: restart, target: g1}}}
"""


def answer(*args: Any) -> tuple[ControlReply, list[Event]]:
    """The reply and the events of a request (its decision is applied already)."""
    reply, decided = handle_control(*args)
    return reply, list(decided.events)


def place(group: str, server: str | None, reason: str = "checked by hand") -> ControlRequest:
    return ControlRequest(
        id="r-1", verb=ControlVerb.PLACE, group=group, server=server, reason=reason, by="op"
    )


def test_place_moves_the_group_with_an_event() -> None:
    cluster = pg_cluster()
    reply, found = answer(cluster, place("pg", "db2"), T0)
    assert reply.ok and reply.text == "pg: placed on db2."
    assert cluster.view.placement["pg"] == "db2"
    [event] = found
    assert event.code == "MRW-406"
    assert event.text == "pg: placed on db2 by op (was db1): checked by hand."
    reply, found = answer(cluster, place("pg", None), T0)
    assert reply.ok and cluster.view.placement["pg"] is None


def test_place_is_refused_during_a_failover_of_the_group() -> None:
    cluster = pg_cluster()
    cluster.handle_fault("nic", fault("db1", "NIC", "eth0", 1), T0)
    reply, found = answer(cluster, place("pg", "db2"), T0)
    assert not reply.ok and found == []
    assert reply.error is not None and "failover of pg is in progress" in reply.error


def test_place_refuses_unknown_names_a_foreign_server_and_no_reason() -> None:
    cluster = pg_cluster()
    for request, expected in (
        (place("nope", "db1"), "there is no group 'nope'"),
        (place("pg", "db9"), "cannot run on 'db9'"),
        (place("pg", "db2", reason=" "), "--reason"),
    ):
        reply, _ = answer(cluster, request, T0)
        assert not reply.ok and reply.error is not None and expected in reply.error
    assert cluster.view.placement["pg"] == "db1"


def test_a_replay_is_an_event_naming_who_asked() -> None:
    cluster = ClusterState.for_config(parse_config(CONFIG, "test.yaml"))
    request = ControlRequest(
        id="r-1",
        verb=ControlVerb.DEAD_LETTERS,
        by="operator ann",
        dead_letters=DeadLetterNote(operation="replay", count=3, selection="reason containing 'x'"),
    )
    reply, (event,) = answer(cluster, request, NOW)
    assert reply.ok and reply.text == event.text
    assert (event.code, event.kind) == ("MRW-803", EventKind.DEAD_LETTER)
    assert event.text == (
        "3 dead letters replayed to where they came from by operator ann (reason containing 'x')."
    )
    assert event.detail["by"] == "operator ann"


def test_a_dead_letters_request_must_say_what_was_done() -> None:
    cluster = ClusterState.for_config(parse_config(CONFIG, "test.yaml"))
    reply, found = answer(cluster, ControlRequest(id="r-2", verb=ControlVerb.DEAD_LETTERS), NOW)
    assert not reply.ok and found == []


FENCED = """
servers:
  s1: {bmc: {fence_agent: fence_ipmilan, address: 127.0.0.1, username: a, password_file: /p/s1}}
  s2: {bmc: {fence_agent: fence_ipmilan, address: 127.0.0.2, username: a, password_file: /p/s2}}
groups: {g1: {servers: [s1, s2]}}
monitors: {m1: {category: NIC, recovery: {action: restart, target: g1}}}
"""


def fence(server: str, action: str = "off", *, force: bool = False) -> ControlRequest:
    return ControlRequest.model_validate(
        {"id": "r-9", "verb": "fence", "server": server, "fence_action": action, "force": force}
    )


def test_an_operator_fence_goes_to_a_peer() -> None:
    cluster = ClusterState.for_config(parse_config(FENCED))
    reply, decided = handle_control(cluster, fence("s1"), T0)
    assert reply.ok and reply.text == "s1: off through its BMC asked of s2's agent."
    [command] = decided.commands
    assert (command.server, command.target, command.fence_action) == ("s2", "s1", "off")
    assert cluster.fences["s1"].cause == "operator"


def test_fencing_the_last_healthy_server_needs_force() -> None:
    cluster = ClusterState.for_config(parse_config(FENCED))
    cluster.view.alive.discard("s2")
    reply, _ = answer(cluster, fence("s1"), T0)
    assert (
        not reply.ok and reply.error == "s1 is the last healthy server; --force to fence it anyway"
    )
    reply, _ = answer(cluster, fence("s1", "status"), T0)  # reading the power harms nothing
    assert reply.error == "no peer can fence s1 now (none alive, healthy and allowed)"


def test_a_server_without_a_bmc_cannot_be_fenced() -> None:
    reply, _ = answer(ClusterState.for_config(parse_config(CONFIG)), fence("s1"), T0)
    assert reply.error == "s1 has no bmc in the configuration: nobody can fence it"
