"""The second pass of configuration checks: every name used is defined, and no setting would
silently do nothing (a key the chosen action never reads, a monitor that watches no server,
`outside_server_group` where no failover could ever leave its server group).

Each problem is a `ConfigIssue` with its key path; `parse_config` reports them with the file.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import ValidationError

from mrwbus.config.model import (
    ALL_GROUPS,
    HANDLER_NAMES,
    RESERVED_FENCE_OPTIONS,
    ActiveTiming,
    AgentConfig,
    ClusterConfig,
    GroupConfig,
    MonitorConfig,
)
from mrwbus.config.relay import check_relay
from mrwbus.errors import ConfigIssue
from mrwbus.messages import Action

UNREAD_BY_ACTION: dict[Action, tuple[str, ...]] = {
    Action.SCRIPT: (
        "max_restarts",
        "max_failovers",
        "final_action",
        "reset_counts_after",
        "move_groups_after_final_action",
    ),
    Action.RESTART: ("max_failovers",),
    Action.FAILOVER: ("max_restarts",),
    Action.FINAL_ACTION: ("max_restarts", "max_failovers"),
}
"""Recovery keys each action never reads. A script runs on every fault while Normal: it is not
counted, so it never reaches a final action and has no counts to expire."""


NAMED_ENTRIES = ("groups", "monitors", "resources")
"""Sections whose entries other entries name: one with a type error is left out whole."""


def references_despite(
    data: dict[str, Any], errors: Sequence[tuple[int | str, ...]]
) -> list[ConfigIssue]:
    """The cross-reference issues of a configuration that has type errors (at `errors`, as
    pydantic locates them): checked on the rest, without the entries in error, so that one run
    of `check-config` tells everything. Issues about a left-out entry are not repeated."""
    rest = copy.deepcopy(data)
    left_out: set[str] = set()
    leaves_taken: set[tuple[int | str, ...]] = set()
    for _ in range(10):  # each round takes out what failed; a few rounds always suffice
        for loc in errors:
            # First only the key in error (its default takes its place); if that key is
            # required, the next round takes the whole entry out.
            if loc not in leaves_taken and _take_leaf(rest, loc):
                leaves_taken.add(loc)
            else:
                left_out |= _take_out(rest, loc)
        try:
            config = ClusterConfig.model_validate(rest)
        except ValidationError as exc:
            errors = [error["loc"] for error in exc.errors()]
            continue
        return [
            issue
            for issue in check_references(config)
            if not any(
                issue.path.startswith(f"{name}") or f"'{name.split('.')[-1]}'" in issue.problem
                for name in left_out
            )
        ]
    return []


def _take_leaf(data: dict[str, Any], loc: tuple[int | str, ...]) -> bool:
    """Remove the mapping key `loc` ends at, if it is one (not a list item, nor an entry)."""
    keys = [part for part in loc if isinstance(part, str)]
    if len(keys) != len(loc) or len(loc) < 3:
        return False
    node: Any = data
    for key in loc[:-1]:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    if isinstance(node, dict) and loc[-1] in node:
        del node[loc[-1]]
        return True
    return False


def _take_out(data: dict[str, Any], loc: tuple[int | str, ...]) -> set[str]:
    """Remove what `loc` points into: a named entry whole, else the top-level key's item."""
    if not loc or not isinstance(data, dict) or loc[0] not in data:
        return set()
    top = str(loc[0])
    section = data[top]
    if len(loc) >= 2 and isinstance(section, dict) and loc[1] in section:
        name = str(loc[1])
        if top == "servers":
            section[name] = None  # a server with no settings is still a server
        else:
            del section[name]
        return {f"{top}.{name}"} if top in NAMED_ENTRIES else set()
    del data[top]
    return set()


def check_references(config: ClusterConfig) -> Iterator[ConfigIssue]:
    servers = set(config.servers)
    owners: dict[str, str] = {}
    for group_name, group in config.groups.items():
        if group_name == ALL_GROUPS:
            yield ConfigIssue(f"groups.{group_name}", f"{ALL_GROUPS!r} is reserved for targets")
        for index, server in enumerate(group.servers):
            if server not in servers:
                yield ConfigIssue(
                    f"groups.{group_name}.servers.{index}", f"unknown server {server!r}"
                )
        if len(set(group.servers)) != len(group.servers):
            yield ConfigIssue(f"groups.{group_name}.servers", "lists a server twice")
        for index, resource in enumerate(group.resources):
            where = f"groups.{group_name}.resources.{index}"
            if resource in config.groups:
                yield ConfigIssue(where, f"resource {resource!r} has the name of a group")
            elif resource in owners:
                yield ConfigIssue(
                    where, f"resource {resource!r} is already in group {owners[resource]!r}"
                )
            else:
                owners[resource] = group_name
    yield from _check_agent(config.agent, config.groups)
    yield from _check_bmcs(config)
    yield from check_resources(config)
    yield from check_relay(config.relay, servers)
    if config.agent.heartbeat_interval * 2 > config.service.heartbeat_timeout:
        yield ConfigIssue(
            "agent.heartbeat_interval",
            f"must be at most half of service.heartbeat_timeout ({config.service.heartbeat_timeout}), "
            "or a live agent would look silent",
        )
    for name, monitor in config.monitors.items():
        where = f"monitors.{name}"
        for server in monitor.servers or {}:
            if server not in servers:
                yield ConfigIssue(f"{where}.servers.{server}", f"unknown server {server!r}")
        recovery = monitor.recovery
        if (
            recovery.target != ALL_GROUPS
            and recovery.target not in config.groups
            and recovery.target not in owners
        ):
            yield ConfigIssue(
                f"{where}.recovery.target",
                f"{recovery.target!r} is not a group, a group resource or {ALL_GROUPS}",
            )
        if isinstance(monitor.timing, ActiveTiming):
            active = monitor.timing.active
            if active not in config.groups and active not in owners:
                yield ConfigIssue(
                    f"{where}.timing.active", f"{active!r} is not a group or a group resource"
                )
        if recovery.action is Action.SCRIPT and not recovery.script:
            yield ConfigIssue(f"{where}.recovery.script", "is required when action is script")
        if recovery.action is not Action.SCRIPT and recovery.script:
            yield ConfigIssue(f"{where}.recovery.script", "is only used when action is script")
        if recovery.fence_first and recovery.action is not Action.FAILOVER:
            yield ConfigIssue(
                f"{where}.recovery.fence_first", "is only used when action is failover"
            )
        if recovery.fence_first and not recovery.final_action.takes_server_down:
            yield ConfigIssue(
                f"{where}.recovery.fence_first",
                "needs a final_action that takes the server down to fence with",
            )
        if recovery.outside_server_group and recovery.action is not Action.FAILOVER:
            yield ConfigIssue(
                f"{where}.recovery.outside_server_group", "is only used when action is failover"
            )
        yield from _check_does_something(config, where, monitor)


def _check_does_something(
    config: ClusterConfig, where: str, monitor: MonitorConfig
) -> Iterator[ConfigIssue]:
    """Settings that are valid one by one but would silently do nothing."""
    if monitor.servers is not None and not monitor.servers:
        yield ConfigIssue(
            f"{where}.servers",
            "lists no server, so the monitor watches nothing (leave it out to watch every server)",
        )
    recovery = monitor.recovery
    for key in UNREAD_BY_ACTION[recovery.action]:
        if key in recovery.model_fields_set:
            yield ConfigIssue(
                f"{where}.recovery.{key}",
                f"is never read when action is {recovery.action.value}; remove it",
            )
    if recovery.outside_server_group and recovery.action is Action.FAILOVER:
        yield from _check_outside_server_group(
            config, f"{where}.recovery.outside_server_group", recovery.target
        )


def _check_outside_server_group(
    config: ClusterConfig, where: str, target: str
) -> Iterator[ConfigIssue]:
    if all(server is None or server.server_group is None for server in config.servers.values()):
        yield ConfigIssue(where, "changes nothing: no server has a server_group")
        return
    if target == ALL_GROUPS:
        groups = list(config.groups)
    else:
        groups = [target] if target in config.groups else [config.group_of_resource(target) or ""]
    groups = [group for group in groups if group in config.groups]  # unknown: reported above
    # A server with no server group counts as a server group of its own.
    if groups and all(
        len({config.server_group(server) or server for server in config.groups[group].servers}) < 2
        for group in groups
    ):
        yield ConfigIssue(
            where,
            f"no failover of {target} could ever be done: every server of "
            f"{' and '.join(groups)} is in the same server group",
        )


def _check_agent(agent: AgentConfig, groups: dict[str, GroupConfig]) -> Iterator[ConfigIssue]:
    for name in agent.handlers:
        if name not in HANDLER_NAMES:
            yield ConfigIssue(
                f"agent.handlers.{name}", f"is not a handler; known: {', '.join(HANDLER_NAMES)}"
            )
    for group, handlers in agent.groups.items():
        if group not in groups:
            yield ConfigIssue(f"agent.groups.{group}", f"unknown group {group!r}")
        for name in handlers:
            if name not in HANDLER_NAMES:
                yield ConfigIssue(f"agent.groups.{group}.{name}", "is not a handler")


def _check_bmcs(config: ClusterConfig) -> Iterator[ConfigIssue]:
    """A BMC names real peers to fence from, and leaves the lines mrwbus writes to mrwbus."""
    for name, server in config.servers.items():
        if server is None or server.bmc is None:
            continue
        where = f"servers.{name}.bmc"
        for key in sorted(set(server.bmc.options) & RESERVED_FENCE_OPTIONS):
            yield ConfigIssue(
                f"{where}.options.{key}",
                "is written by mrwbus from the BMC's own keys (the password from password_file)",
            )
        for index, fencer in enumerate(server.bmc.fenced_by or ()):
            if fencer not in config.servers:
                yield ConfigIssue(f"{where}.fenced_by.{index}", f"unknown server {fencer!r}")
            elif fencer == name:
                yield ConfigIssue(f"{where}.fenced_by.{index}", "a server never fences itself")
        if server.bmc.fenced_by == [] or len(config.servers) < 2:
            yield ConfigIssue(f"{where}", "no other server could fence it")


def check_resources(config: ClusterConfig) -> Iterator[ConfigIssue]:
    """Every resource in a group, every server named a server of that group, and a group
    either wholly run by OCF agents or not at all."""
    for group_name, members in config.ocf_groups().items():
        for index, member in enumerate(members):
            if member not in config.resources:
                yield ConfigIssue(
                    f"groups.{group_name}.resources.{index}",
                    f"{member!r} has no entry under resources: every resource of a group "
                    "with OCF resources needs one",
                )
    for name, resource in config.resources.items():
        group = config.group_of_resource(name)
        if group is None:
            yield ConfigIssue(
                f"resources.{name}", "is in no group's resources, so nothing would ever run it"
            )
            continue
        for server in resource.servers:
            if server not in config.groups[group].servers:
                yield ConfigIssue(
                    f"resources.{name}.servers.{server}",
                    f"{server!r} is not a server of group {group!r}",
                )
