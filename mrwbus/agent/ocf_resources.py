"""OCF resources as one server runs them: `resources_on` builds them from the configuration
(checked against the installed agents first), `OcfResource.run` runs one action by the OCF
contract, with its timeout, in a process group of its own (`shell.run_program`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from mrwbus.agent.resource_agents import MetadataCache, check_agents
from mrwbus.agent.shell import run_program
from mrwbus.config.model import ClusterConfig
from mrwbus.config.resources import DEFAULT_TIMEOUT, ResourceConfig
from mrwbus.errors import ConfigError
from mrwbus.messages import Outcome
from mrwbus.ocf.contract import (
    AgentName,
    OcfAction,
    ResourceState,
    action_outcome,
    agent_environment,
    exit_name,
    exit_reason,
    monitor_state,
)
from mrwbus.ocf.metadata import AgentMetadata, ParamValue


@dataclass(frozen=True)
class OcfRun:
    """One action of one resource's agent, done."""

    resource: str
    action: OcfAction
    code: int | None
    """The exit code; None: it timed out and its process group was killed."""
    output: str

    @property
    def outcome(self) -> Outcome:
        return action_outcome(self.action, self.code)

    @property
    def state(self) -> ResourceState:
        return monitor_state(self.code)

    def summary(self) -> str:
        """`exit 1 (OCF_ERR_GENERIC): <the agent's exit reason, else its last line>`."""
        reason = exit_reason(self.output) or _last_line(self.output)
        return f"{exit_name(self.code)}: {reason}" if reason else exit_name(self.code)

    def describe(self) -> str:
        """`vip stop: exit 1 (OCF_ERR_GENERIC): ...`."""
        return f"{self.resource} {self.action.value}: {self.summary()}"


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    return lines[-1][-300:] if lines else ""


@dataclass(frozen=True)
class OcfResource:
    """A group resource as one server runs it: its agent, its parameters there, timeouts."""

    name: str
    agent: AgentName
    root: str
    params: dict[str, ParamValue]
    timeouts: dict[OcfAction, float]

    async def run(self, action: OcfAction) -> OcfRun:
        timeout = self.timeouts[action]
        variables = agent_environment(self.root, self.agent, self.name, self.params, timeout)
        ran = await run_program([self.agent.path(self.root), action.value], variables, timeout)
        return OcfRun(self.name, action, ran.status, ran.output)


def resources_on(
    config: ClusterConfig, server: str, root: str, *, source: str = "configuration"
) -> dict[str, list[OcfResource]]:
    """Group -> its `OcfResource`s in start order, for the OCF groups `server` may run.

    Raises `ConfigError` when an agent is missing or a parameter does not fit its meta-data:
    an agent that would fail at the first failover should not start at all.
    """
    cache = MetadataCache(root)
    issues = check_agents(config, root, [server], cache)
    if issues:
        raise ConfigError(source, issues)
    groups: dict[str, list[OcfResource]] = {}
    for group, names in config.ocf_groups().items():
        if server not in config.groups[group].servers:
            continue
        built = []
        for name in names:
            resource = config.resources[name]
            metadata = cache.get(resource.agent)
            assert isinstance(metadata, AgentMetadata)  # check_agents passed
            built.append(
                OcfResource(
                    name=name,
                    agent=resource.agent,
                    root=root,
                    params=resource.params_on(server),
                    timeouts=_timeouts(resource, metadata),
                )
            )
        groups[group] = built
    return groups


def _timeouts(resource: ResourceConfig, metadata: AgentMetadata) -> dict[OcfAction, float]:
    chosen: dict[OcfAction, float] = {}
    for action in (OcfAction.START, OcfAction.STOP, OcfAction.MONITOR):
        configured: timedelta | None = getattr(resource.timeouts, action.value)
        timeout = configured or metadata.timeouts.get(action.value) or DEFAULT_TIMEOUT
        chosen[action] = timeout.total_seconds()
    return chosen
