"""Which commands an agent accepts before any handler sees them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from mrwbus.agent.acceptance import SERVICE_USER, refusal
from mrwbus.config.model import ClusterConfig
from mrwbus.messages import RecoveryCommand


def command(t0: datetime, **fields: Any) -> RecoveryCommand:
    values: dict[str, Any] = {
        "id": "c1",
        "fault_id": "f1",
        "monitor": "mrw1",
        "server": "server1",
        "action": "restart",
        "group": "web",
        "issued_at": t0,
    }
    return RecoveryCommand.model_validate({**values, **fields})


def unverified(config: ClusterConfig) -> ClusterConfig:
    return config.model_copy(
        update={"security": config.security.model_copy(update={"verify_senders": False})}
    )


def test_the_services_fresh_command_for_a_known_group_is_accepted(
    config: ClusterConfig, t0: datetime
) -> None:
    assert refusal(command(t0), SERVICE_USER, config, "server1", t0) is None
    fields = {"resource": "web-app"}
    assert refusal(command(t0, **fields), SERVICE_USER, config, "server1", t0) is None


@pytest.mark.parametrize(
    "user_id", [None, "", "guest", "operator", "agent-server1", "relay-server1"]
)
def test_only_the_service_may_send_commands(
    config: ClusterConfig, t0: datetime, user_id: str | None
) -> None:
    problem = refusal(command(t0), user_id, config, "server1", t0)
    assert problem is not None and "mrwbus-service" in problem


def test_an_unverified_configuration_accepts_any_sender(
    config: ClusterConfig, t0: datetime
) -> None:
    assert refusal(command(t0), "guest", unverified(config), "server1", t0) is None
    assert refusal(command(t0), None, unverified(config), "server1", t0) is None


def test_a_command_older_than_the_limit_is_refused(config: ClusterConfig, t0: datetime) -> None:
    limit = config.agent.max_command_age
    assert limit == timedelta(minutes=5)  # the default
    assert refusal(command(t0), SERVICE_USER, config, "server1", t0 + limit) is None
    problem = refusal(
        command(t0), SERVICE_USER, config, "server1", t0 + limit + timedelta(seconds=1)
    )
    assert problem is not None and "max_command_age" in problem
    years_ago = command(t0 - timedelta(days=3 * 365))
    assert refusal(years_ago, SERVICE_USER, config, "server1", t0) is not None


def test_a_command_from_the_future_is_refused_beyond_clock_skew(
    config: ClusterConfig, t0: datetime
) -> None:
    assert refusal(command(t0 + timedelta(seconds=30)), SERVICE_USER, config, "server1", t0) is None
    problem = refusal(command(t0 + timedelta(hours=1)), SERVICE_USER, config, "server1", t0)
    assert problem is not None and "future" in problem


@pytest.mark.parametrize(
    ("fields", "server", "expected"),
    [
        ({"group": "nope"}, "server1", "group 'nope' is not in the configuration"),
        ({"resource": "nope"}, "server1", "resource 'nope' is not in the configuration"),
        ({"resource": "db-disk"}, "server1", "belongs to group 'db'"),
        ({"server": "server2"}, "server1", "addressed to server 'server2'"),
    ],
)
def test_unknown_targets_are_refused(
    config: ClusterConfig, t0: datetime, fields: dict[str, Any], server: str, expected: str
) -> None:
    problem = refusal(command(t0, **fields), SERVICE_USER, config, server, t0)
    assert problem is not None and expected in problem


def test_a_group_that_does_not_run_on_this_server_is_refused(
    config: ClusterConfig, t0: datetime
) -> None:
    lone = config.model_copy(
        update={
            "groups": {
                **config.groups,
                "web": config.groups["web"].model_copy(update={"servers": ["server1"]}),
            }
        }
    )
    problem = refusal(command(t0, server="server2"), SERVICE_USER, lone, "server2", t0)
    assert problem is not None and "does not run on 'server2'" in problem
