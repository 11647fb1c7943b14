"""Warnings about a valid configuration: actions no configured agent handler would carry out,
and BMCs that could not be driven from here.

The reference agent refuses a command it has no handler for (the dangerous final actions
included): a monitor whose final action is `shutdown` with no `final_action.shutdown` handler
validates, and fails the day it matters. `check-config` prints these warnings and still exits
0: an agent written with the Python API may bring handlers the configuration does not list.
Only servers the monitor watches count (and, for a failover's start, its group's other
servers). `script` and `before_script` need no handler: the agent runs the named script; the
groups whose resources are OCF agents need none for restart, failover and stop_group.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

from mrwbus.config.model import ClusterConfig
from mrwbus.config.resources import OCF_HANDLERS
from mrwbus.core.placement import target_groups
from mrwbus.errors import ConfigIssue
from mrwbus.messages import Action, FinalAction


def unhandled_actions(config: ClusterConfig) -> list[ConfigIssue]:
    """One warning per (key, handler, server) that no agent handler covers; then the BMCs
    this machine could not drive."""
    found: dict[tuple[str, str], ConfigIssue] = {}
    for issue in _unhandled(config):
        found.setdefault((issue.path, issue.problem), issue)
    return [*found.values(), *_fencing(config)]


def _fencing(config: ClusterConfig) -> Iterator[ConfigIssue]:
    """A fence agent not installed here, and fences that trust every broker user."""
    for name, server in config.servers.items():
        if server is None or server.bmc is None:
            continue
        program = server.bmc.fence_agent
        if shutil.which(program, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin") is None:
            yield ConfigIssue(
                f"servers.{name}.bmc.fence_agent",
                f"{program} is not installed here; the agents that fence {name} need it"
                " (Debian: fence-agents)",
            )
        if not config.security.verify_senders:
            yield ConfigIssue(
                f"servers.{name}.bmc",
                "security.verify_senders is false: any broker user could have it fenced",
            )


def _unhandled(config: ClusterConfig) -> Iterator[ConfigIssue]:
    for name, monitor in config.monitors.items():
        recovery = monitor.recovery
        where = f"monitors.{name}.recovery"
        groups = target_groups(config, recovery.target)
        for server in config.monitored_servers(name):
            here = [g for g in groups if server in config.groups[g].servers]
            if recovery.action is Action.RESTART:
                for group in here:
                    yield from _need(config, f"{where}.action", "restart", server, group)
            if recovery.action is Action.FAILOVER:
                for group in here:
                    yield from _need(config, f"{where}.action", "failover.stop", server, group)
                    for other in config.groups[group].servers:
                        if other != server:
                            yield from _need(
                                config, f"{where}.action", "failover.start", other, group
                            )
            final = recovery.final_action
            if recovery.action is Action.SCRIPT or final is FinalAction.NONE:
                continue
            handler = f"final_action.{final.value}"
            if final is FinalAction.STOP_GROUP:
                for group in here:
                    yield from _need(config, f"{where}.final_action", handler, server, group)
            else:  # sent with no group: only a generic handler carries it out
                yield from _need(config, f"{where}.final_action", handler, server, None)


def _need(
    config: ClusterConfig, path: str, handler: str, server: str, group: str | None
) -> Iterator[ConfigIssue]:
    agent = config.agent
    if group is not None and handler in OCF_HANDLERS and group in config.ocf_groups():
        return  # its OCF resources carry it out
    if handler in agent.handlers or (group is not None and handler in agent.groups.get(group, {})):
        return
    where = "agent.handlers" + (f" or agent.groups.{group}" if group else "")
    of = f" of {group}" if group else ""
    yield ConfigIssue(
        path,
        f"{handler}{of} on {server} would be refused: no agent handler {handler} in {where}",
    )
