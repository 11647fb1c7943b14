"""Where each group runs and which servers are alive, and the choice of a failover destination.

The service starts with each group on the first server of its list and moves it as recovery
commands are issued; node agents' reports correct the view when they arrive.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mrwbus.config.model import ALL_GROUPS, ClusterConfig, ExcludeRule
from mrwbus.core.progress import Down

EXCLUDED_BECAUSE: dict[ExcludeRule, str] = {
    "any_error": "a monitor is in Error there",
    "same_monitor": "the same monitor is in Error there",
}
"""Why `service.exclude_destinations` disqualifies a server, as `simulate` and events say it."""


@dataclass
class ClusterView:
    """Where each group is active (None: nowhere) and which servers are alive.

    A server is presumed alive until its agent was heard from and then fell silent; groups
    in `moving` are being failed over and count as active nowhere until the move is over.
    """

    placement: dict[str, str | None]
    alive: set[str]
    moving: set[str] = field(default_factory=set)
    last_seen: dict[str, datetime] = field(default_factory=dict)
    reported: dict[str, frozenset[str]] = field(default_factory=dict)
    """The groups each server's agent last reported active (as moves since corrected it)."""
    down: dict[str, Down] = field(default_factory=dict)
    """Servers fenced or taken down, until their agent reports again after it came back."""
    last_report: dict[str, frozenset[str]] = field(default_factory=dict)
    """Each server's last report as it was sent, to tell a changed belief from a repeated one
    (not journaled: after a restart, every first report counts in full)."""

    @classmethod
    def initial(cls, config: ClusterConfig) -> ClusterView:
        return cls(
            placement={name: group.servers[0] for name, group in config.groups.items()},
            alive=set(config.servers),
        )

    def groups_on(self, server: str) -> list[str]:
        return sorted(group for group, where in self.placement.items() if where == server)

    def is_active(self, group: str, server: str) -> bool:
        return group not in self.moving and self.placement.get(group) == server

    def silent_servers(self, now: datetime, timeout: timedelta) -> set[str]:
        """Servers whose agent was heard from, but not within `timeout`."""
        return {server for server, seen in self.last_seen.items() if now - seen > timeout}

    def apply_report(
        self,
        server: str,
        groups: frozenset[str],
        now: datetime,
        probed: frozenset[str] | None = None,
    ) -> tuple[dict[str, list[str]], dict[str, str | None]]:
        """Learn from an agent's report; return the groups that alive servers both claim, and
        where each group whose placement it changed was believed to run before.

        What a probe saw (`probed`) is a fact and always counts. What the agent only believes
        (its journal) counts on its first report and when it changed: a heartbeat repeating
        an old belief does not undo a move the service or an operator made since.
        """
        self.last_seen[server] = now
        previous = self.last_report.get(server)
        # A moving group's news is kept unseen: it counts once its failover is over.
        self.last_report[server] = (groups - self.moving) | (
            (previous or frozenset()) & self.moving
        )
        self.reported[server] = groups
        # Only what the report can change is looked at: a report costs its news, not the
        # number of groups in the cluster.
        candidates = (
            self.placement
            if previous is None
            else sorted(((groups ^ previous) | (probed or frozenset())) & self.placement.keys())
        )
        conflicts: dict[str, list[str]] = {}
        moved: dict[str, str | None] = {}
        for group in candidates:
            if group in self.moving:
                continue  # the failover in progress owns its group's placement
            before = self.placement[group]
            holders = sorted(
                s for s, held in self.reported.items() if group in held and s in self.alive
            )
            if len(holders) == 1:
                self.placement[group] = holders[0]
            elif len(holders) > 1:
                conflicts[group] = holders
            elif before == server:
                self.placement[group] = None  # its server says it no longer runs it
            if self.placement[group] != before:
                moved[group] = before
        return conflicts, moved

    def move(self, group: str, server: str | None) -> None:
        """Record a move the service made, so a stale report does not undo it."""
        for where, held in self.reported.items():
            if group in held and where != server:
                self.reported[where] = held - {group}
        if server is not None and server in self.reported:
            self.reported[server] = self.reported[server] | {group}
        self.placement[group] = server


def target_groups(config: ClusterConfig, target: str) -> list[str]:
    """The groups a recovery target stands for (before asking where they run)."""
    if target == ALL_GROUPS:
        return list(config.groups)
    if target in config.groups:
        return [target]
    owner = config.group_of_resource(target)
    return [owner] if owner else []


@dataclass(frozen=True)
class Destination:
    """The outcome of a failover choice: a server, or why there is none."""

    server: str | None
    reason: str = ""
    skipped: dict[str, str] = field(default_factory=dict)
    chosen_because: str = ""
    """With `outside_server_group`: why the server chosen is in another server group."""

    def explained(self) -> str:
        """`server3 (server2: not alive; server3: server group site-b, not site-a)`."""
        reasons = [f"{server}: {why}" for server, why in self.skipped.items()]
        if self.server is not None and self.chosen_because:
            reasons.append(f"{self.server}: {self.chosen_because}")
        return f"{self.server or 'none'}" + (f" ({'; '.join(reasons)})" if reasons else "")


def choose_failover_destination(
    config: ClusterConfig,
    group: str,
    leaving: str,
    *,
    servers_in_error: Collection[str],
    alive: Collection[str],
    outside_server_group: bool = False,
    excluded: Iterable[str] = (),
    rule: ExcludeRule = "any_error",
) -> Destination:
    """The highest-priority server of the group, other than the one it leaves, that can take it.

    A candidate must be alive and not in `servers_in_error` (the servers the `rule`,
    `service.exclude_destinations`, disqualifies); with `outside_server_group`, it must belong
    to a different server group than `leaving`. `excluded` lists servers already tried (a
    start that failed there).
    """
    leaving_group = config.server_group(leaving)
    skipped: dict[str, str] = {}
    tried = set(excluded)
    for candidate in config.groups[group].servers:
        if candidate == leaving:
            continue
        if candidate in tried:
            skipped[candidate] = "already tried"
        elif candidate not in alive:
            skipped[candidate] = "not alive"
        elif candidate in servers_in_error:
            skipped[candidate] = f"{EXCLUDED_BECAUSE[rule]} (exclude_destinations: {rule})"
        elif (
            outside_server_group
            and leaving_group is not None
            and config.server_group(candidate) == leaving_group
        ):
            # A server without a server group is in a group of its own.
            skipped[candidate] = f"in the same server group ({leaving_group})"
        else:
            because = ""
            if outside_server_group:
                because = _another_server_group(config.server_group(candidate), leaving_group)
            return Destination(candidate, skipped=skipped, chosen_because=because)
    if not skipped:
        return Destination(None, f"group {group} has no server other than {leaving}")
    reasons = "; ".join(f"{server}: {why}" for server, why in skipped.items())
    return Destination(None, f"no eligible server for group {group} ({reasons})", skipped)


def _another_server_group(candidate: str | None, leaving: str | None) -> str:
    if leaving is None:
        return "any server group will do: the source has no server_group"
    if candidate is None:
        return f"no server_group, so a server group of its own (not {leaving})"
    return f"server group {candidate}, not {leaving}"
