"""Replies go only to queues the broker generated for the asker."""

from __future__ import annotations

import pytest

from mrwbus.bus.publisher import is_reply_target
from mrwbus.bus.topology import COMMANDS, CONTROL, DEAD, JOURNAL, SNAPSHOT, agent_queue


@pytest.mark.parametrize(
    "reply_to",
    ["amq.gen-JzTY20BRgKO-HjmUJj0wLg", "amq.rabbitmq.reply-to.g1h2AA5yZXBseUAy"],
)
def test_a_broker_generated_queue_is_a_reply_target(reply_to: str) -> None:
    assert is_reply_target(reply_to)


@pytest.mark.parametrize(
    "reply_to",
    [None, "", SNAPSHOT, JOURNAL, DEAD, CONTROL, COMMANDS, agent_queue("server1"), "amq.gen"],
)
def test_nothing_else_is_a_reply_target(reply_to: str | None) -> None:
    assert not is_reply_target(reply_to)
