"""OCF resource agents on this machine: found under `OCF_ROOT`, their meta-data read, their
actions run.

`check_agents` checks a configuration's resources against the installed agents (an unknown
agent, an unknown or missing required parameter, a value of the wrong type, each with its key
path); `check-config` and the node agent at its start call it. The node agent runs the
actions (`mrwbus.agent.ocf_resources`).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mrwbus.config.model import ClusterConfig
from mrwbus.config.resources import ResourceConfig
from mrwbus.errors import ConfigIssue, ResourceAgentError
from mrwbus.ocf.contract import DEFAULT_OCF_ROOT, AgentName, OcfAction, agent_environment, exit_name
from mrwbus.ocf.metadata import AgentMetadata, ParamValue, check_params, parse_metadata

METADATA_TIMEOUT = 10.0
"""Seconds a `meta-data` action may take (agents print a fixed text)."""


def ocf_root() -> str:
    """`OCF_ROOT` from the environment, else where Debian installs the agents."""
    return os.environ.get("OCF_ROOT") or DEFAULT_OCF_ROOT


def installed_agents(root: str) -> list[AgentName]:
    """Every executable `provider:type` under `<root>/resource.d`, sorted."""
    base = Path(root) / "resource.d"
    found = []
    for provider in sorted(base.iterdir()) if base.is_dir() else []:
        for agent in sorted(provider.iterdir()) if provider.is_dir() else []:
            if agent.is_file() and os.access(agent, os.X_OK):
                found.append(AgentName(provider.name, agent.name))
    return found


def read_metadata(agent: AgentName, root: str) -> AgentMetadata:
    """Run the agent's `meta-data` action and parse it; `ResourceAgentError` when the agent is
    not installed or does not answer with resource-agent XML."""
    path = agent.path(root)
    if not os.access(path, os.X_OK):
        raise ResourceAgentError(
            f"no OCF agent {agent} under {root}/resource.d (is resource-agents installed, "
            "or OCF_ROOT set?)"
        )
    variables = agent_environment(root, agent, "", {}, METADATA_TIMEOUT)
    del variables["OCF_RESOURCE_INSTANCE"]  # none: defaults show as the agent writes them
    environment = {**os.environ, **variables}
    try:
        done = subprocess.run(
            [path, OcfAction.META_DATA.value],
            capture_output=True,
            text=True,
            timeout=METADATA_TIMEOUT,
            env=environment,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ResourceAgentError(
            f"{agent} meta-data did not finish within {exc.timeout} s"
        ) from exc
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or [""]
        raise ResourceAgentError(f"{agent} meta-data: {exit_name(done.returncode)} {tail[0]}")
    return parse_metadata(done.stdout)


@dataclass
class MetadataCache:
    """Each agent's meta-data read once; a failure remembered as its sentence."""

    root: str
    found: dict[AgentName, AgentMetadata | str] = field(default_factory=dict)

    def get(self, agent: AgentName) -> AgentMetadata | str:
        if agent not in self.found:
            try:
                self.found[agent] = read_metadata(agent, self.root)
            except ResourceAgentError as exc:
                self.found[agent] = str(exc)
        return self.found[agent]


def check_agents(
    config: ClusterConfig,
    root: str,
    servers: Iterable[str] | None = None,
    cache: MetadataCache | None = None,
) -> list[ConfigIssue]:
    """The resources' agents and parameters checked against the installed agents (on the
    servers given, else every server of each resource's group)."""
    cache = cache if cache is not None else MetadataCache(root)
    wanted = set(servers) if servers is not None else None
    issues: dict[tuple[str, str], ConfigIssue] = {}
    for name, resource in config.resources.items():
        group = config.group_of_resource(name)
        if group is None:
            continue  # config_checks says so
        on = [s for s in config.groups[group].servers if wanted is None or s in wanted]
        if not on:
            continue
        for issue in _check_resource(name, resource, cache.get(resource.agent), on):
            issues.setdefault((issue.path, issue.problem), issue)
    return list(issues.values())


def _check_resource(
    name: str, resource: ResourceConfig, metadata: AgentMetadata | str, servers: list[str]
) -> Iterator[ConfigIssue]:
    where = f"resources.{name}"
    if isinstance(metadata, str):
        yield ConfigIssue(f"{where}.ocf", metadata)
        return
    agent = resource.ocf
    # Unknown names and wrong types where each value is written; the required ones on what
    # each server ends up with.
    given = {key: value for key, value in resource.params.items()}
    yield from _known_and_typed(metadata, agent, given, f"{where}.params")
    for server, own in resource.servers.items():
        if own is not None:
            yield from _known_and_typed(
                metadata, agent, dict(own.params), f"{where}.servers.{server}.params"
            )
    missing: dict[str, list[str]] = {}
    for server in servers:
        for required in metadata.required:
            if required not in resource.params_on(server):
                missing.setdefault(required, []).append(server)
    for required, where_missing in missing.items():
        on = "" if where_missing == servers else f" (missing on {', '.join(where_missing)})"
        yield ConfigIssue(f"{where}.params.{required}", f"is required by {agent}{on}")


def _known_and_typed(
    metadata: AgentMetadata, agent: str, params: dict[str, ParamValue], where: str
) -> Iterator[ConfigIssue]:
    for issue in check_params(metadata, agent, params, where):
        if not issue.problem.startswith("is required"):
            yield issue
