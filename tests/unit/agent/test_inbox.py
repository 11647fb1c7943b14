"""What the agent accepts from its queue, and the sentence it gives for what it does not."""

from __future__ import annotations

import pytest

from mrwbus.agent.inbox import is_report_request, parse_command, salvage_id
from mrwbus.errors import ContractError
from tests.unit.agent.conftest import command


def test_a_valid_command_parses() -> None:
    sent = command()
    assert parse_command(sent.to_body(), "server1.restart", "server1") == sent


def test_a_command_for_another_server_passes_to_be_refused() -> None:
    sent = command(server="server2")
    assert parse_command(sent.to_body(), "server1.restart", "server1") == sent


@pytest.mark.parametrize(
    ("body", "key", "problem"),
    [
        (b"\xff", "server1.restart", "not valid UTF-8"),
        (b"{", "server1.restart", "not JSON"),
        (b"[1]", "server1.restart", "must be a JSON object"),
        (b'{"id": "x"}', "server1.restart", "breaks the command schema"),
        (command().to_body(), "server1.script", "does not match the body"),
        (b"{" + b" " * 70_000 + b"}", "server1.restart", "at most"),
    ],
)
def test_an_invalid_command_says_why(body: bytes, key: str, problem: str) -> None:
    with pytest.raises(ContractError, match=problem):
        parse_command(body, key, "server1")


@pytest.mark.parametrize(
    ("body", "found"),
    [(b'{"id": "cmd-7", "action": "dance"}', "cmd-7"), (b'{"id": ""}', None), (b"{", None)],
)
def test_salvage_id(body: bytes, found: str | None) -> None:
    assert salvage_id(body) == found


def test_report_requests_are_told_by_their_routing_key() -> None:
    assert is_report_request("server1.report", "server1")
    assert not is_report_request("server1.restart", "server1")
    assert not is_report_request("server2.report", "server1")
