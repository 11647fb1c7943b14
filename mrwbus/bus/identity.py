"""Who a message speaks for: the broker-verified `user_id`, or, for a message the service
republished itself (`mrwbus dead replay`), the user named in `SENDER_HEADER`.

Only the service's own `user_id` makes the header believable: any other publisher may write
whatever headers it likes. What each user may send is policy, and lives with whoever receives
(`service.senders`, `agent.acceptance`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mrwbus.bus.roles import SERVICE

SENDER_HEADER = "x-mrwbus-sender"
"""Who sent a message before it was dead-lettered (and replayed): set only by mrwbus itself."""

UNKNOWN_SENDER = ""
"""`SENDER_HEADER` of a message whose sender did not say who it was."""


def effective_sender(user_id: str | None, headers: Mapping[str, Any] | None) -> str | None:
    """The user a message speaks for: its `user_id`, or, for the service's replay of a dead
    letter, the user who sent the original."""
    if user_id == SERVICE and headers and SENDER_HEADER in headers:
        original = headers[SENDER_HEADER]
        if isinstance(original, bytes):
            original = original.decode("utf-8", errors="replace")
        return str(original) or None
    return user_id


def describe_sender(user: str | None) -> str:
    return repr(user) if user else "a publisher that did not say who it is"
