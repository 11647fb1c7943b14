"""The permission regexes of each role, tried with Python's re (RabbitMQ's are PCRE, and these
use nothing where the two differ); tests/integration/test_roles.py proves them on a broker."""

from __future__ import annotations

import re

import pytest

from mrwbus.bus.roles import (
    Role,
    agent_role,
    operator_role,
    relay_role,
    roles_for,
    service_role,
    viewer_role,
)


def allows(pattern: str, name: str) -> bool:
    return re.search(pattern, name) is not None


def topic(role: Role, exchange: str) -> tuple[str, str]:
    (found,) = [t for t in role.topics if t.exchange == exchange]
    return found.write, found.read


def test_one_user_per_role_and_server() -> None:
    assert [role.user for role in roles_for(["server1", "db-2"])] == [
        "mrwbus-service",
        "relay-server1",
        "relay-db-2",
        "agent-server1",
        "agent-db-2",
        "operator",
        "viewer",
    ]


def test_only_the_service_writes_the_default_and_the_commands_exchange() -> None:
    roles = roles_for(["server1", "server2"])
    for name in ("amq.default", "mrwbus.commands"):
        assert [role.user for role in roles if allows(role.write, name)] == ["mrwbus-service"]
    assert allows(service_role().configure, "mrwbus.agent.server1")


@pytest.mark.parametrize(
    ("key", "allowed"),
    [
        ("server1.nic", True),
        ("server1.fc", True),
        ("server2.nic", False),
        ("server10.nic", False),
        ("server1.nic.x", False),
        ("server1", False),
    ],
)
def test_a_relay_writes_faults_for_its_own_server_only(key: str, allowed: bool) -> None:
    role = relay_role("server1")
    assert (role.configure, role.read) == ("^$", "^$")
    assert allows(role.write, "mrwbus.faults") and not allows(role.write, "mrwbus.results")
    write, read = topic(role, "mrwbus.faults")
    assert allows(write, key) is allowed
    assert not allows(read, "server1.nic")


def test_an_agent_reads_its_own_queue_and_writes_its_own_results() -> None:
    role = agent_role("server1")
    assert allows(role.read, "mrwbus.agent.server1")
    assert not allows(role.read, "mrwbus.agent.server2")
    assert not allows(role.read, "mrwbus.agent.server10")
    assert not allows(role.configure, "mrwbus.agent.server2")
    results_write, _ = topic(role, "mrwbus.results")
    assert [
        k
        for k in ("server1.result", "server1.report", "server2.result", "server1.resultx")
        if allows(results_write, k)
    ] == ["server1.result", "server1.report"]
    _, commands_read = topic(role, "mrwbus.commands")
    assert allows(commands_read, "server1.#") and not allows(commands_read, "server2.#")
    assert not allows(commands_read, "#")


def test_server_names_are_escaped() -> None:
    role = agent_role("a.b")
    assert not allows(role.read, "mrwbus.agent.aXb")


@pytest.mark.parametrize(
    ("role", "verbs"),
    [
        (
            operator_role(),
            {"ping", "status", "clear", "suspend", "resume", "place", "dead_letters", "replay"},
        ),
        (viewer_role(), {"ping", "status"}),
    ],
    ids=["operator", "viewer"],
)
def test_control_verbs_per_user(role: Role, verbs: set[str]) -> None:
    write, _ = topic(role, "mrwbus.control")
    candidates = {"ping", "status", "clear", "suspend", "resume", "place", "statusx", "#"}
    candidates |= {"dead_letters", "replay"}
    assert {verb for verb in candidates if allows(write, verb)} == verbs
    assert allows(role.configure, "amq.gen-Xy12") and not allows(role.configure, "mrwbus.control")
    assert not allows(role.read, "mrwbus.control")  # may not take others' requests
    assert allows(role.read, "mrwbus.events")


def test_operators_read_the_dead_letters_viewers_do_not() -> None:
    assert allows(operator_role().read, "mrwbus.dead")
    assert not allows(viewer_role().read, "mrwbus.dead")
    for role in (operator_role(), viewer_role()):
        assert not allows(role.write, "mrwbus.dead")  # replay goes through the service
