"""The second pass of configuration checks: settings that would silently do nothing."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from mrwbus.config.checks import UNREAD_BY_ACTION
from mrwbus.config.loading import parse_config
from mrwbus.errors import ConfigError
from mrwbus.messages import Action


@pytest.fixture
def data(cluster_yaml: str) -> dict[str, Any]:
    """The example cluster as plain data, to be broken one way per test."""
    return copy.deepcopy(yaml.safe_load(cluster_yaml))  # type: ignore[no-any-return]


def issues(data: dict[str, Any]) -> dict[str, str]:
    """Path -> problem of every issue, as `check-config` reports them (file name included)."""
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_dump(data, sort_keys=False), "cluster.yaml")
    assert str(caught.value).startswith("cluster.yaml")
    return {issue.path: issue.problem for issue in caught.value.issues}


def monitor_with(action: Action, **recovery: object) -> dict[str, Any]:
    extra = {"script": "/opt/x.sh"} if action is Action.SCRIPT else {}
    return {
        "category": "NIC",
        "recovery": {"action": action.value, "target": "web", **extra, **recovery},
    }


@pytest.mark.parametrize(
    ("action", "key"), [(action, key) for action, keys in UNREAD_BY_ACTION.items() for key in keys]
)
def test_a_key_the_action_never_reads_is_refused(
    data: dict[str, Any], action: Action, key: str
) -> None:
    value = {
        "final_action": "reboot",
        "reset_counts_after": "1h",
        "move_groups_after_final_action": False,
    }.get(key, 3)
    data["monitors"]["extra"] = monitor_with(action, **{key: value})
    assert issues(data) == {
        f"monitors.extra.recovery.{key}": f"is never read when action is {action.value}; remove it"
    }


def test_a_default_left_out_is_not_refused(data: dict[str, Any]) -> None:
    data["monitors"]["extra"] = monitor_with(Action.SCRIPT)
    parse_config(yaml.safe_dump(data), "cluster.yaml")


def test_a_monitor_that_watches_no_server_is_refused(data: dict[str, Any]) -> None:
    data["monitors"]["mrw1"]["servers"] = {}
    assert list(issues(data)) == ["monitors.mrw1.servers"]


def test_outside_server_group_with_no_server_group_anywhere_is_refused(
    data: dict[str, Any],
) -> None:
    for server in data["servers"].values():
        server.pop("server_group", None)
    assert issues(data) == {
        "monitors.mrw2.recovery.outside_server_group": "changes nothing: no server has a server_group"
    }


def test_outside_server_group_when_the_group_stays_in_one_server_group_is_refused(
    data: dict[str, Any],
) -> None:
    target = data["monitors"]["mrw2"]["recovery"]["target"]
    group = (data["groups"].get(target) and target) or next(
        name for name, group in data["groups"].items() if target in group.get("resources", [])
    )
    data["groups"][group]["servers"] = ["server1", "server2"]  # both in site-a
    problem = issues(data)["monitors.mrw2.recovery.outside_server_group"]
    assert problem.startswith("no failover of") and "same server group" in problem


def test_a_bmc_names_real_peers_and_leaves_the_password_to_its_file() -> None:
    text = """
servers:
  s1:
    bmc:
      fence_agent: fence_redfish
      address: 127.0.0.1
      username: admin
      password_file: /etc/mrwbus/bmc/s1
      options: {password: oops, ssl_insecure: "1"}
      fenced_by: [s1, s9]
  s2: {bmc: {fence_agent: fence_ipmilan, address: 127.0.0.1, username: admin}}
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "cluster.yaml")
    found = {issue.path: issue.problem for issue in caught.value.issues}
    assert found["servers.s1.bmc.options.password"].startswith("is written by mrwbus")
    assert found["servers.s1.bmc.fenced_by.0"] == "a server never fences itself"
    assert found["servers.s1.bmc.fenced_by.1"] == "unknown server 's9'"
    assert found["servers.s2.bmc.password_file"] == "is required"
