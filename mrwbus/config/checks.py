"""The second pass of configuration checks: every name used is defined, and no setting would
silently do nothing (a key the chosen action never reads, a monitor that watches no server,
`outside_server_group` where no failover could ever leave its server group).

Each problem is a `ConfigIssue` with its key path; `parse_config` reports them with the file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from mrwbus.config.bmc_checks import check_bmcs
from mrwbus.config.model import (
    ALL_GROUPS,
    HANDLER_NAMES,
    ActiveTiming,
    AgentConfig,
    ClusterConfig,
    GroupConfig,
    MonitorConfig,
    RecoveryConfig,
)
from mrwbus.config.pacemaker_checks import check_pacemaker
from mrwbus.config.relay import check_relay
from mrwbus.errors import ConfigIssue
from mrwbus.messages import Action, FinalAction

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
    rest = _unshared(data)
    left_out: set[str] = set()
    leaves_taken: set[tuple[int | str, ...]] = set()
    for _ in range(10):  # each round takes out what failed; a few rounds always suffice
        for loc in (key_path(loc) for loc in errors):
            # First only the key in error (its default takes its place); if that key is
            # required, the next round takes the whole entry out.
            if loc not in leaves_taken and _take_leaf(rest, loc):
                leaves_taken.add(loc)
            elif _stand_in(rest, loc):
                continue
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


STAND_INS = {("monitors", "category"): "NIC"}
"""A required key no cross-reference check reads: when it is missing or wrong, a stand-in
takes its place, so that the rest of its entry (a monitor's recovery target) is still checked."""


def _stand_in(data: dict[str, Any], loc: tuple[int | str, ...]) -> bool:
    if len(loc) != 3 or (loc[0], loc[2]) not in STAND_INS:
        return False
    entry = (
        data.get(str(loc[0]), {}).get(loc[1]) if isinstance(data.get(str(loc[0])), dict) else None
    )
    if not isinstance(entry, dict):
        return False
    entry[loc[2]] = STAND_INS[(str(loc[0]), str(loc[2]))]
    return True


def key_path(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """A pydantic error location as keys of the file: without the union members it names."""
    return tuple(part for part in loc if not _is_union_tag(part))


def _is_union_tag(part: int | str) -> bool:
    # pydantic names the union member tried (e.g. `literal['always']`); it is not a key.
    return isinstance(part, str) and (
        "[" in part or part in {"ActiveTiming", "MonitorServerConfig"}
    )


def _unshared(data: object) -> Any:
    """A copy in which no two places share a mapping or list (an alias shares its anchor's):
    taking out a key must take it out of one place only. Iterative: no recursion."""
    root: list[Any] = [data]
    pending: list[tuple[Any, int | str, Any]] = [(root, 0, data)]
    while pending:
        parent, key, value = pending.pop()
        if isinstance(value, dict):
            copy_: Any = {}
            pending.extend((copy_, k, v) for k, v in value.items())
        elif isinstance(value, list):
            copy_ = [None] * len(value)
            pending.extend((copy_, i, v) for i, v in enumerate(value))
        else:
            copy_ = value
        parent[key] = copy_
    return root[0]


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
    if len(loc) >= 2 and isinstance(section, dict):
        return set()  # the entry is out already (an earlier error in it took it)
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
    yield from check_bmcs(config)
    yield from check_resources(config)
    yield from check_pacemaker(config)
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
        written = recovery.model_fields_set
        if "fence_first" in written and recovery.action is not Action.FAILOVER:
            yield ConfigIssue(
                f"{where}.recovery.fence_first", "is only used when action is failover"
            )
        if "fence_first" in written and not recovery.final_action.takes_server_down:
            yield ConfigIssue(
                f"{where}.recovery.fence_first",
                "needs a final_action that takes the server down to fence with",
            )
        if "outside_server_group" in written and recovery.action is not Action.FAILOVER:
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
    yield from _check_inert_by_other_settings(f"{where}.recovery", recovery)
    if "outside_server_group" in recovery.model_fields_set and recovery.action is Action.FAILOVER:
        yield from _check_outside_server_group(
            config, f"{where}.recovery.outside_server_group", recovery.target
        )


def _check_inert_by_other_settings(where: str, recovery: RecoveryConfig) -> Iterator[ConfigIssue]:
    """Keys the chosen action reads, that another setting makes inert."""
    written = recovery.model_fields_set
    action, final = recovery.action, recovery.final_action
    if (
        "move_groups_after_final_action" in written
        and action is not Action.SCRIPT
        and not final.takes_server_down
    ):
        yield ConfigIssue(
            f"{where}.move_groups_after_final_action",
            f"is never read: final_action {final.value} does not take the server down; remove it",
        )
    counted = (action is Action.RESTART and recovery.max_restarts > 0) or (
        action is Action.FAILOVER and recovery.max_failovers > 0
    )
    if action is not Action.SCRIPT and not counted and final is FinalAction.NONE:
        # No command is ever sent: nothing to run before, no recovery that could succeed.
        for key in ("before_script", "rearm_after"):
            if key in written:
                yield ConfigIssue(
                    f"{where}.{key}",
                    f"is never read: no command is ever sent (no {action.value} allowed,"
                    " final_action none); remove it or choose a final_action",
                )
    if action is Action.FAILOVER and recovery.max_failovers == 0:
        for key in ("outside_server_group", "fence_first"):
            if key in written:
                yield ConfigIssue(
                    f"{where}.{key}",
                    "is never read: max_failovers is 0, so no failover is ever made",
                )
    rearm, reset = recovery.rearm_after, recovery.reset_counts_after
    if rearm is not None and reset is not None and rearm >= reset and action is not Action.SCRIPT:
        yield ConfigIssue(
            f"{where}.rearm_after",
            f"must be shorter than reset_counts_after ({_duration(reset)}): the counts expire"
            " before the monitor re-arms, so every fault takes the first step and the final"
            " action is never reached",
        )


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{value.total_seconds():g}s"


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
    sites = {
        group: [config.server_group(server) or server for server in config.groups[group].servers]
        for group in groups
    }
    if groups and all(len(set(sites[group])) < 2 for group in groups):
        yield ConfigIssue(
            where,
            f"no failover of {target} could ever be done: every server of "
            f"{' and '.join(groups)} is in the same server group",
        )
    elif groups and all(len(set(sites[group])) == len(sites[group]) for group in groups):
        yield ConfigIssue(
            where,
            f"changes nothing: no two servers of {' and '.join(groups)} share a server_group"
            " (a server without server_group is a server group of its own)",
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
