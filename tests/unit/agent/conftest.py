"""Fixtures of the agent's unit tests: commands as the service sends them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from mrwbus.messages import RecoveryCommand

CommandFactory = Callable[..., RecoveryCommand]


def command(**fields: Any) -> RecoveryCommand:
    """A restart of failover1 on server1 unless told otherwise."""
    values: dict[str, Any] = {
        "id": "cmd-1",
        "fault_id": "fault-1",
        "monitor": "mrw1",
        "server": "server1",
        "action": "restart",
        "group": "failover1",
        "issued_at": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    }
    values.update(fields)
    return RecoveryCommand.model_validate(values)


@pytest.fixture(scope="session")
def make_command() -> CommandFactory:
    return command
