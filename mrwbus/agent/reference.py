"""The reference agent (`mrwbus agent --server NAME --config PATH`): shell handlers from the
cluster configuration's `agent` section.

- `agent.handlers` are the generic handlers, `agent.groups.<group>` a group's own; each runs
  its command line with `ShellHandler`.
- `script` and `before_script` need no handler: when none is configured, the agent runs the
  command line the command carries (the configuration's `recovery.script` and
  `recovery.before_script`), with the handler default timeout. A configured handler wins.
- Every other action with no handler is refused, the dangerous final actions included.
- `probe` (generic, or a group's own) is no command handler: it asks the system whether a
  group runs here (`agent.probes`), at start, after every command and every
  `agent.probe_interval`; what it sees replaces the journal's belief.
- A group whose resources are OCF agents (`resources:`) gets their start, stop and monitor
  as its own handlers and probe (`agent.ocf`), unless `agent.groups.<group>` names one.
- `fence`: when this server may fence another (`servers.<s>.bmc`, `fenced_by`), the agent
  runs that server's fence agent for the service (`agent.fence_agents`); nothing to configure here.
- `agent.backend: pacemaker`: Pacemaker carries out restarts, failovers, stop_group,
  stop_cluster_service, the BMC final actions and fences, and crm_mon is every group's probe
  (`agent.pacemaker`, docs/pacemaker.md); a group's own handlers and probe still win.
- The groups initially active (on the journal's first start) are those whose priority list
  starts with this server: where the cluster starts them, until a probe says otherwise.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from mrwbus.agent.acceptance import refusal
from mrwbus.agent.fence_agents import FenceAgentHandler, fence_readiness
from mrwbus.agent.handlers import BEFORE_SCRIPT, FENCE, Handler
from mrwbus.agent.ocf import ocf_handlers, resource_lines
from mrwbus.agent.pacemaker.backend import PacemakerBackend
from mrwbus.agent.probes import ShellProbe
from mrwbus.agent.runtime import Agent
from mrwbus.agent.shell import CommandScriptHandler, NamedScriptsOnly, ShellHandler
from mrwbus.bus.connection import Urls
from mrwbus.config.model import ClusterConfig, HandlerConfig
from mrwbus.config.pacemaker import PACEMAKER_HANDLERS
from mrwbus.errors import ConfigError, ConfigIssue
from mrwbus.messages import utc_now

PROBE = "probe"

DEFAULT_SCRIPT_TIMEOUT = HandlerConfig.model_fields["timeout"].default
"""A command's own script runs with the same default timeout as a configured handler."""


def build_reference_agent(
    config: ClusterConfig,
    server: str,
    amqp_url: Urls,
    *,
    state_dir: str | Path | None = None,
    source: str = "configuration",
) -> Agent:
    """An `Agent` for `server` with the shell handlers of `config.agent`; not yet running.

    Raises `ConfigError` when the configuration has no such server.
    """
    if server not in config.servers:
        known = ", ".join(config.servers)
        raise ConfigError(
            source, [ConfigIssue("servers", f"has no server {server!r} (known: {known})")]
        )
    settings = config.agent
    agent = Agent(
        server,
        amqp_url,
        state_dir if state_dir is not None else settings.state_dir,
        heartbeat_interval=settings.heartbeat_interval.total_seconds(),
        initial_groups=[
            name for name, group in config.groups.items() if group.servers[0] == server
        ],
        probe_interval=settings.probe_interval.total_seconds(),
        listed_groups=[name for name, group in config.groups.items() if server in group.servers],
        refusal=lambda command, user_id: refusal(command, user_id, config, server, utc_now()),
    )
    guarded = {name: _named_scripts(config, server, name) for name in ("script", BEFORE_SCRIPT)}

    def wrap(name: str, handler: Handler) -> Handler:
        # Whoever runs a script, it must be one the configuration names for this server.
        return NamedScriptsOnly(handler, name, guarded[name]) if name in guarded else handler

    for name, handler in settings.handlers.items():
        if name == PROBE:
            agent.add_probe(ShellProbe.from_config(handler, server))
        else:
            agent.add_handler(name, wrap(name, ShellHandler.from_config(handler)))
    for group, handlers in settings.groups.items():
        for name, handler in handlers.items():
            if name == PROBE:
                agent.add_probe(ShellProbe.from_config(handler, server), group=group)
            else:
                agent.add_handler(name, wrap(name, ShellHandler.from_config(handler)), group=group)
    ocf, ocf_probes = ocf_handlers(config, server, source=source)
    for group, by_name in ocf.items():
        for name, ocf_handler in by_name.items():
            agent.add_handler(name, ocf_handler, group=group)
    for group, ocf_probe in ocf_probes.items():
        agent.add_probe(ocf_probe, group=group)
    if settings.backend == "pacemaker":
        backend = PacemakerBackend(config, server)
        for name in PACEMAKER_HANDLERS:
            agent.add_handler(name, backend)
        agent.add_handler(FENCE, backend)
        agent.add_probe(backend.probe)
        agent.executor_notes = backend.notes
    elif any(config.may_fence(server, target) for target in config.servers):
        agent.add_handler(FENCE, FenceAgentHandler(config, server))
    timeout = _seconds(DEFAULT_SCRIPT_TIMEOUT)
    for name in ("script", BEFORE_SCRIPT):
        if name not in settings.handlers:
            agent.add_handler(name, wrap(name, CommandScriptHandler(name, timeout)))
    return agent


async def run_agent(
    config: ClusterConfig,
    server: str,
    amqp_url: Urls,
    stop: asyncio.Event,
    state_dir: str | None = None,
    *,
    source: str = "configuration",
) -> None:
    """Run the reference agent of `server` until `stop` is set (the CLI's `mrwbus agent`).

    `source` names the configuration (its path) in a `ConfigError` for an unknown server.
    """
    agent = build_reference_agent(config, server, amqp_url, state_dir=state_dir, source=source)
    await agent.run(stop)


def print_probes(config: ClusterConfig, server: str, *, source: str = "configuration") -> None:
    """`mrwbus agent --once`: what the probes see now, one line per group listed for `server`."""
    agent = build_reference_agent(config, server, "amqp://unused", source=source)
    seen = asyncio.run(agent.probes.run(agent.listed_groups))
    for group in sorted(agent.listed_groups):
        if agent.probes.find(group) is None:
            state = "no probe configured"
        elif group not in seen:
            state = "unknown (the probe could not tell)"
        else:
            state = "running" if seen[group] else "not running"
        print(f"{server} {group}: {state}")
        for line in resource_lines(agent.probes.find(group)):
            print(f"  {line}")
    for target in config.servers:
        if config.may_fence(server, target):
            print(f"{server} may fence {target}: {fence_readiness(config, target)}")


def _named_scripts(config: ClusterConfig, server: str, field: str) -> frozenset[str]:
    """The scripts (`recovery.script` or `before_script`) of the monitors that watch `server`."""
    return frozenset(
        line
        for name, monitor in config.monitors.items()
        if server in config.monitored_servers(name)
        and (line := getattr(monitor.recovery, field)) is not None
    )


def _seconds(value: object) -> float:
    assert isinstance(value, timedelta)
    return value.total_seconds()
