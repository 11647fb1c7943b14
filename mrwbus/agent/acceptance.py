"""Whether an agent accepts a command at all, before any handler sees it (docs/security.md).

Pure: the command, the AMQP `user_id` it came with, the configuration, the agent's server and
the time in; a refusal (one sentence) or None out. The runtime dead-letters a refused command
with that sentence and answers it with a refused result; its handler never runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from mrwbus.config.model import ALL_GROUPS, ClusterConfig
from mrwbus.messages import Action, RecoveryCommand

SERVICE_USER = "mrwbus-service"
"""The only broker user that may send commands (`mrwbus provision` creates it)."""

CLOCK_SKEW = timedelta(minutes=1)
"""How far in the future `issued_at` may be: the service's clock may run ahead of ours."""


def refusal(
    command: RecoveryCommand,
    user_id: str | None,
    config: ClusterConfig,
    server: str,
    now: datetime,
) -> str | None:
    """Why `server`'s agent must not carry `command` out, or None when it may."""
    if config.security.verify_senders and user_id != SERVICE_USER:
        sender = repr(user_id) if user_id else "a publisher that did not say who it is"
        return f"sent by {sender}, not by {SERVICE_USER!r}: only the service sends commands"
    if command.server != server:
        return f"addressed to server {command.server!r}, not to {server!r}"
    age = now - command.issued_at
    limit = config.agent.max_command_age
    if age > limit:
        return f"issued {_seconds(age)} ago, longer than agent.max_command_age ({_seconds(limit)})"
    if -age > CLOCK_SKEW:
        return f"issued {_seconds(-age)} in the future (at {command.issued_at.isoformat()})"
    if command.action is Action.FENCE or command.target is not None:
        return _fence_refusal(command, config, server)
    return _unknown_target(command, config, server)


def _fence_refusal(command: RecoveryCommand, config: ClusterConfig, server: str) -> str | None:
    """A fence runs only against another server this one is configured to fence."""
    target = command.target
    if command.action is not Action.FENCE or target is None:
        return "only a fence acts on another server than the one that runs it"
    if target == server:
        return "a server never fences itself"
    if config.bmc_of(target) is None:
        return f"{target!r} has no bmc in the configuration"
    if not config.may_fence(server, target):
        return f"{server!r} is not in servers.{target}.bmc.fenced_by"
    return None


def _unknown_target(command: RecoveryCommand, config: ClusterConfig, server: str) -> str | None:
    group_name = command.group
    if group_name is not None and group_name != ALL_GROUPS:
        group = config.groups.get(group_name)
        if group is None:
            return f"group {group_name!r} is not in the configuration"
        if server not in group.servers:
            return f"group {group_name!r} does not run on {server!r} in the configuration"
    resource = command.resource
    if resource is not None:
        owner = config.group_of_resource(resource)
        if owner is None:
            return f"resource {resource!r} is not in the configuration"
        if group_name is not None and group_name != ALL_GROUPS and owner != group_name:
            return f"resource {resource!r} belongs to group {owner!r}, not {group_name!r}"
    return None


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():.0f} s"
