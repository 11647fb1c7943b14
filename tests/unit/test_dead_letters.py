"""Dead letters described, filtered and printed: the pure half of `mrwbus dead`."""

from datetime import UTC, datetime, timedelta

import pytest

from mrwbus.bus.identity import SENDER_HEADER, UNKNOWN_SENDER
from mrwbus.bus.roles import SERVICE
from mrwbus.bus.topology import DEAD_ID_HEADER, ERROR_HEADER
from mrwbus.errors import ServiceError
from mrwbus.service.dead_letters import (
    DeadLetter,
    describe,
    group_by_reason,
    render_list,
    render_show,
    replay_headers,
    select,
    to_replay,
)

NOW = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)


def own(reason: str, minutes_ago: float, dead_id: str = "a1b2c3d4e5f6-0000") -> DeadLetter:
    return describe(
        b'{"id": "f-1"}',
        {
            ERROR_HEADER: reason,
            "x-mrwbus-exchange": "mrwbus.faults",
            "x-mrwbus-routing-key": "server1.nic",
            DEAD_ID_HEADER: dead_id,
        },
        message_id="f-1",
        timestamp=NOW - timedelta(minutes=minutes_ago),
    )


def test_an_own_dead_letter_says_why_where_and_when() -> None:
    letter = own("body is not JSON", 5)
    assert letter.reason == "body is not JSON"
    assert (letter.exchange, letter.routing_key, letter.queue) == (
        "mrwbus.faults",
        "server1.nic",
        None,
    )
    assert letter.at == NOW - timedelta(minutes=5)
    assert letter.id == "a1b2c3d4e5f6-0000"
    assert letter.source == "mrwbus.faults server1.nic"


def test_a_broker_dead_letter_is_read_from_x_death() -> None:
    died = datetime(2026, 11, 25, 19, 0)  # pamqp gives naive UTC times
    letter = describe(
        b"poison",
        {
            "x-death": [
                {
                    "reason": "delivery_limit",
                    "queue": "mrwbus.agent.server1",
                    "exchange": "mrwbus.commands",
                    "routing-keys": ["server1.restart"],
                    "time": died,
                    "count": 1,
                }
            ]
        },
        message_id="c-1",
        timestamp=None,
    )
    assert letter.reason.startswith("dead-lettered by the broker from mrwbus.agent.server1")
    assert "poison message" in letter.reason
    assert (letter.exchange, letter.routing_key) == ("mrwbus.commands", "server1.restart")
    assert letter.at == died.replace(tzinfo=UTC)
    assert letter.id.startswith("b") and len(letter.id) == 32
    again = describe(b"poison", letter.headers, message_id="c-1", timestamp=None)
    assert again.id == letter.id  # stable between two listings


def letter_with(headers: dict[str, object], user_id: str | None) -> DeadLetter:
    return describe(b"{}", headers, message_id="f-1", timestamp=NOW, user_id=user_id)


def test_replay_strips_the_bookkeeping_and_names_who_replayed_and_who_sent() -> None:
    made_by_service = {**own("x", 1).headers, SENDER_HEADER: "relay-server1", "trace": "t-1"}
    headers = replay_headers(letter_with(made_by_service, SERVICE), "operator ann")
    assert headers == {
        "trace": "t-1",
        "x-mrwbus-replayed-by": "operator ann",
        SENDER_HEADER: "relay-server1",
    }


def test_a_replay_vouches_only_for_what_mrwbus_can_vouch_for() -> None:
    # An agent may write to mrwbus.dead: its claims about the sender are not believed.
    planted = letter_with({ERROR_HEADER: "x", SENDER_HEADER: "relay-server2"}, "agent-server1")
    assert replay_headers(planted, "ann")[SENDER_HEADER] == "agent-server1"
    # The broker dead-lettered it: the original's user_id is the letter's.
    poison = letter_with({"x-death": [{"reason": "delivery_limit"}]}, SERVICE)
    assert replay_headers(poison, "ann")[SENDER_HEADER] == SERVICE
    # Nobody said who sent it: a replay says nobody either.
    anonymous = letter_with({ERROR_HEADER: "x"}, None)
    assert replay_headers(anonymous, "ann")[SENDER_HEADER] == UNKNOWN_SENDER


def test_replay_selection_by_ids_and_reason_each_once() -> None:
    letters = [own("body is not JSON", 90, "aaaaaa-1"), own("server 'x' unknown", 5, "bbbbbb-2")]
    chosen = to_replay(letters, ["aaaaaa"], "not json", NOW)
    assert chosen == letters[:1]
    with pytest.raises(ServiceError, match="at least 6"):
        to_replay(letters, ["aaa"], None, NOW)
    with pytest.raises(ServiceError, match="no dead letter"):
        to_replay(letters, ["cccccc"], None, NOW)
    nowhere = letter_with({ERROR_HEADER: "x", DEAD_ID_HEADER: "dddddd-1"}, None)
    with pytest.raises(ServiceError, match="where it came from"):
        to_replay([nowhere], ["dddddd"], None, NOW)


def test_select_by_reason_id_and_age() -> None:
    letters = [own("body is not JSON", 90, "aaaaaa-1"), own("server 'x' unknown", 5, "bbbbbb-2")]
    assert select(letters, reason="not json", now=NOW) == letters[:1]
    assert select(letters, ids=["bbbbbb"], now=NOW) == letters[1:]
    assert select(letters, since=timedelta(hours=1), now=NOW) == letters[1:]
    assert select(letters, before=timedelta(hours=1), now=NOW) == letters[:1]
    timeless = describe(b"", {}, message_id=None, timestamp=None)
    assert select([timeless], before=timedelta(seconds=1), now=NOW) == []  # age unknown: kept


def test_the_list_groups_by_reason_most_frequent_first() -> None:
    letters = [own("rare", 1, "r-1"), own("often", 1, "o-1"), own("often", 2, "o-2")]
    assert list(group_by_reason(letters)) == ["often", "rare"]
    text = render_list(letters)
    assert text.splitlines()[0] == "3 dead letters, 2 reasons"
    assert "often (2)" in text and "rare (1)" in text
    assert render_list([]) == "No dead letters."


def test_the_preview_never_prints_control_characters() -> None:
    letter = describe(b"\x1b[31mred" + b"x" * 200, {}, message_id=None, timestamp=None)
    assert "\x1b" not in letter.preview() and letter.preview().endswith("...")


def test_what_came_off_the_bus_is_shown_escaped_never_obeyed() -> None:
    letter = describe(
        b"not json \x1b[2J\nsecond line",
        {
            ERROR_HEADER: "bad \x1b]0;owned\x07 body",
            "x-mrwbus-exchange": "mrwbus.faults",
            "x-mrwbus-routing-key": "server1.nic\x1b[31m",
            "x-note": "\x1b[1A",
        },
        message_id="\x1b[H",
        timestamp=NOW,
    )
    for text in (render_list([letter]), render_show(letter)):
        assert "\x1b" not in text and "\x07" not in text
    shown = render_show(letter)
    assert "bad \\x1b]0;owned\\x07 body" in shown
    assert shown.endswith("not json \\x1b[2J\nsecond line")  # the body keeps its lines


def test_nothing_is_replayed_to_the_default_exchange_or_anywhere_unchecked() -> None:
    # An agent may write to mrwbus.dead: a letter claiming to come from the default exchange
    # would otherwise have the service (which may write there) fill its own snapshot.
    planted = letter_with(
        {
            ERROR_HEADER: "x",
            DEAD_ID_HEADER: "eeeeee-1",
            "x-mrwbus-exchange": "",
            "x-mrwbus-routing-key": "mrwbus.snapshot",
        },
        "agent-server1",
    )
    with pytest.raises(ServiceError, match=r"only messages of mrwbus\.faults"):
        to_replay([planted], ["eeeeee"], None, NOW)
