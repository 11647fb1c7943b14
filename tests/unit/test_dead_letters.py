"""Dead letters described, filtered and printed: the pure half of `mrwbus dead`."""

from datetime import UTC, datetime, timedelta

from mrwbus.bus.topology import DEAD_ID_HEADER, ERROR_HEADER
from mrwbus.dead_letters import (
    describe,
    group_by_reason,
    render_list,
    render_show,
    replay_headers,
    select,
)

NOW = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)


def own(reason: str, minutes_ago: float, dead_id: str = "a1b2c3d4e5f6-0000") -> object:
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


def test_replay_strips_the_bookkeeping_and_names_who_replayed() -> None:
    headers = replay_headers({**own("x", 1).headers, "x-death": [], "trace": "t-1"}, "operator ann")
    assert headers == {"trace": "t-1", "x-mrwbus-replayed-by": "operator ann"}


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
