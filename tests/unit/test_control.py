"""Operators' dead-letter operations become events naming who asked."""

from datetime import UTC, datetime

from mrwbus.bus_messages import DeadLetterNote
from mrwbus.config import parse_config
from mrwbus.control import handle_control
from mrwbus.core.cluster import ClusterState
from mrwbus.messages import ControlRequest, ControlVerb, EventKind

NOW = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)
CONFIG = """
servers: {s1: {}}
groups: {g1: {servers: [s1]}}
monitors: {m1: {category: NIC, recovery: {action: restart, target: g1}}}
"""


def test_a_replay_is_an_event_naming_who_asked() -> None:
    cluster = ClusterState.for_config(parse_config(CONFIG, "test.yaml"))
    request = ControlRequest(
        id="r-1",
        verb=ControlVerb.DEAD_LETTERS,
        by="operator ann",
        dead_letters=DeadLetterNote(operation="replay", count=3, selection="reason containing 'x'"),
    )
    reply, (event,) = handle_control(cluster, request, NOW)
    assert reply.ok and reply.text == event.text
    assert (event.code, event.kind) == ("MRW-803", EventKind.DEAD_LETTER)
    assert event.text == (
        "3 dead letters replayed to where they came from by operator ann (reason containing 'x')."
    )
    assert event.detail["by"] == "operator ann"


def test_a_dead_letters_request_must_say_what_was_done() -> None:
    cluster = ClusterState.for_config(parse_config(CONFIG, "test.yaml"))
    reply, found = handle_control(
        cluster, ControlRequest(id="r-2", verb=ControlVerb.DEAD_LETTERS), NOW
    )
    assert not reply.ok and found == []
