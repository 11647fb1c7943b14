"""The reference agent built from a cluster configuration: its handlers, groups and state."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrwbus.agent import Agent, HandlerResult, build_reference_agent
from mrwbus.agent.execution import carry_out
from mrwbus.agent.shell import CommandScriptHandler, NamedScriptsOnly, ShellHandler
from mrwbus.config.loading import parse_config
from mrwbus.config.model import ClusterConfig
from mrwbus.errors import ConfigError
from mrwbus.messages import Outcome, RecoveryCommand
from tests.unit.agent.conftest import CommandFactory

CLUSTER = """
servers:
  server1: {server_group: site-a}
  server2: {server_group: site-a}
  server3: {server_group: site-b}
groups:
  failover1: {servers: [server1, server2, server3]}
  failover2: {servers: [server2, server1]}
  failover3: {servers: [server1, server3]}
monitors:
  mrw1: {category: NIC, recovery: {action: restart, target: failover1, before_script: "true"}}
agent:
  heartbeat_interval: 2s
  state_dir: /var/lib/mrwbus-agent
  handlers:
    restart: {run: "echo generic restart", timeout: 30s}
    failover.start: {run: "echo start $MRWBUS_GROUP"}
  groups:
    failover1:
      restart: {run: "echo own restart of failover1", timeout: 5s}
"""


@pytest.fixture(scope="module")
def cluster() -> ClusterConfig:
    return parse_config(CLUSTER, "cluster.yaml")


def test_an_unknown_server_is_a_config_error(cluster: ClusterConfig) -> None:
    with pytest.raises(ConfigError) as raised:
        build_reference_agent(cluster, "server9", "amqp://", source="cluster.yaml")
    assert str(raised.value) == (
        "cluster.yaml: servers: has no server 'server9' (known: server1, server2, server3)"
    )


def test_settings_come_from_the_configuration(cluster: ClusterConfig) -> None:
    agent = build_reference_agent(cluster, "server1", "amqp://broker/")
    assert agent.server == "server1"
    assert agent.amqp_url == "amqp://broker/"
    assert agent.heartbeat_interval == 2.0
    assert agent.state_dir == Path("/var/lib/mrwbus-agent")
    # The groups the cluster starts here: their priority list begins with server1.
    assert agent.active_groups == {"failover1", "failover3"}
    assert build_reference_agent(cluster, "server3", "amqp://").active_groups == set()


def test_the_state_dir_can_be_overridden(cluster: ClusterConfig, tmp_path: Path) -> None:
    agent = build_reference_agent(cluster, "server2", "amqp://", state_dir=tmp_path)
    assert agent.state_dir == tmp_path


def test_handlers_are_wired_with_group_overrides(cluster: ClusterConfig) -> None:
    table = build_reference_agent(cluster, "server1", "amqp://").handlers
    generic = table.find("restart", "failover2")
    own = table.find("restart", "failover1")
    assert isinstance(generic, ShellHandler) and generic.run == "echo generic restart"
    assert generic.timeout == 30.0
    assert isinstance(own, ShellHandler) and own.run == "echo own restart of failover1"
    assert own.timeout == 5.0
    assert table.find("failover.stop", "failover1") is None
    assert table.find("final_action.shutdown", None) is None
    # The command's own script and before_script run when no handler is configured.
    for name in ("script", "before_script"):
        fallback = table.find(name, "failover1")
        assert isinstance(fallback, NamedScriptsOnly) and isinstance(
            fallback.inner, CommandScriptHandler
        )
        assert fallback.inner.field == name


async def test_the_reference_agent_carries_commands_out(
    cluster: ClusterConfig, make_command: CommandFactory, tmp_path: Path
) -> None:
    table = build_reference_agent(cluster, "server1", "amqp://").handlers
    own = await carry_out(make_command(), "server1", table)
    assert (own.outcome, own.detail) == (Outcome.SUCCEEDED, "own restart of failover1")
    start = await carry_out(
        make_command(action="failover", step="start", group="failover3"), "server1", table
    )
    assert start.detail == "start failover3"
    with_before = await carry_out(
        make_command(group="failover2", before_script="true"), "server1", table
    )
    assert with_before.before_script_outcome is Outcome.SUCCEEDED
    unnamed = await carry_out(
        make_command(group="failover2", before_script="rm -rf /tmp/x"), "server1", table
    )
    assert unnamed.before_script_outcome is Outcome.REFUSED
    shutdown = await carry_out(
        make_command(action="final_action", final_action="shutdown"), "server1", table
    )
    assert shutdown.outcome is Outcome.REFUSED


def test_the_api_checks_names() -> None:
    with pytest.raises(ValueError, match="server name"):
        Agent("server 1", "amqp://", "var")
    agent = Agent("server1", "amqp://", "var")
    with pytest.raises(ValueError, match="group name"):
        agent.active_groups = {"no such/group"}

    @agent.handler("failover.stop", group="failover1")
    async def stop(command: RecoveryCommand) -> HandlerResult:
        return HandlerResult.succeeded()

    assert agent.handlers.find("failover.stop", "failover1") is stop
    assert agent.handlers.find("failover.stop", "failover2") is None
    with pytest.raises(ValueError, match="not a handler name"):
        agent.handler("shutdown")(stop)
