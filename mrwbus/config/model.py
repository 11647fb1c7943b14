"""The cluster configuration as typed, validated models (`config.loading` reads a file into them).

Validation runs in two passes: pydantic checks each value's shape, then
`config_checks.check_references` checks that every name used is defined and that no setting
would silently do nothing. Every problem is reported with its key path, e.g.
`config/cluster.yaml: monitors.mrw1.keyword: is 1100 bytes, at most 1023 allowed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mrwbus.config.alerting import AlertingConfig
from mrwbus.config.durations import Duration
from mrwbus.config.pacemaker import PacemakerConfig
from mrwbus.config.relay import RelayConfig
from mrwbus.config.resources import ResourceConfig
from mrwbus.messages import Action, Category, FinalAction, Keyword, Name

ALL_GROUPS = "all_groups"
"""The recovery target that means every group active on the server."""


@dataclass(frozen=True)
class DeadLetterLimits:
    """What `mrwbus.dead` may hold, so that a flood of bad messages cannot fill the broker's
    disk: beyond `max_length` the oldest are dropped, and each is dropped after `ttl`.
    `ttl` is also how long an operator has to look at a dead letter and replay it
    (`bus.topology` turns these into the queue's arguments)."""

    max_length: int = 100_000
    ttl: timedelta = timedelta(days=14)


DEFAULT_DEAD_LIMITS = DeadLetterLimits()


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


FENCE_AGENT_PATTERN = r"^fence_[A-Za-z0-9_]{1,64}$"
"""A fence-agents program by name (looked up on PATH), never a path or a shell line."""

FENCE_OPTION_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
"""A fence agent's long option as a stdin key (`lanplus`, `ssl_insecure`, `method`, ...)."""

RESERVED_FENCE_OPTIONS = frozenset(
    {"action", "ip", "ipport", "username", "password", "password_script", "plug", "port"}
)
"""Keys mrwbus writes itself; `options` may not set them (the password above all)."""


class BmcConfig(Strict):
    """How a peer powers a server off through its BMC with a fence agent (docs/fencing.md).

    The password is read from `password_file` on the agent that fences, when it fences: it is
    never in this file, on the bus, in a command, a result, an event or a log line."""

    fence_agent: Annotated[str, StringConstraints(pattern=FENCE_AGENT_PATTERN)]
    """Any program of the fence-agents package: fence_ipmilan, fence_redfish, fence_idrac, ..."""
    address: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\s=]+$")]
    port: int | None = Field(default=None, ge=1, le=65535)
    username: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\n]+$")]
    password_file: Annotated[str, StringConstraints(min_length=1, max_length=4096, pattern=r"^/")]
    """An absolute path on the agents that may fence this server, readable by them alone."""
    options: dict[
        Annotated[str, StringConstraints(pattern=FENCE_OPTION_PATTERN)],
        Annotated[str, StringConstraints(max_length=1024, pattern=r"^[^\n]*$")],
    ] = Field(default_factory=dict)
    """More `key=value` lines for the fence agent (`lanplus: "1"`, `ssl_insecure: "1"`)."""
    fenced_by: list[Name] | None = None
    """The servers whose agents may fence this one (default: every other server)."""
    timeout: Duration = timedelta(seconds=60)
    """How long one fence (the action and the status read back) may take on an agent."""


class ServerConfig(Strict):
    server_group: Name | None = None
    bmc: BmcConfig | None = None


class GroupConfig(Strict):
    servers: list[Name] = Field(min_length=1, description="Failover priority, highest first.")
    resources: list[Name] = Field(default_factory=list)


class MonitorServerConfig(Strict):
    """Per-server overrides of a monitor (the console's per-server tab)."""

    keyword: Keyword | None = None


class ActiveTiming(Strict):
    active: Name


class RecoveryConfig(Strict):
    action: Action
    target: Name
    outside_server_group: bool = False
    max_restarts: int = Field(default=1, ge=0, le=1000)
    max_failovers: int = Field(default=1, ge=0, le=1000)
    final_action: FinalAction = FinalAction.NONE
    script: str | None = None
    before_script: str | None = None
    reset_counts_after: Duration | None = None
    clear_on_recovery: bool = False
    fence_first: bool = False
    """Failover only: when the source does not answer, send it the final action (fencing)
    and start the group elsewhere once that is confirmed."""
    rearm_after: Duration | None = None
    """Once a recovery succeeded and no new fault came for this long, the status returns to
    Normal by itself (counts kept), so the next fault takes the next step. None: stay in Error
    until a recovery notice (`clear_on_recovery`) or an operator's `clear`."""
    move_groups_after_final_action: bool = True
    """When a final action that takes the server down succeeded, fail the groups that were
    active there over to the next eligible server."""


class MonitorConfig(Strict):
    category: Category
    keyword: Keyword = ""
    servers: dict[Name, MonitorServerConfig | None] | None = None
    timing: Literal["always"] | ActiveTiming = "always"
    recovery: RecoveryConfig


ExcludeRule = Literal["any_error", "same_monitor"]
"""`service.exclude_destinations`: which monitors in Error make a server unhealthy."""


class ServiceConfig(Strict):
    """How the service runs the recovery loop."""

    stop_timeout: Duration = timedelta(seconds=30)
    """How long a failover waits for the source server to confirm the stop."""
    start_timeout: Duration = timedelta(seconds=60)
    """How long a failover waits for the destination to confirm the start."""
    heartbeat_timeout: Duration = timedelta(seconds=15)
    """A server whose agent was heard from, then silent this long, is no destination."""
    protect_last_healthy_server: bool = True
    """Suppress a final action that would take down the last healthy server."""
    exclude_destinations: ExcludeRule = "any_error"
    """Which monitors in Error disqualify a server as a failover destination (and as a
    healthy server for `protect_last_healthy_server`): any monitor there, or only the monitor
    whose recovery is choosing."""
    repeat_summary_interval: Duration | None = timedelta(seconds=10)
    """Faults for a monitor already in Error are counted and journaled one by one, but reported
    by one summary event per interval (`MRW-106`); null reports every one (`MRW-103`)."""
    fence_silent_servers: bool = True
    """A server silent longer than `heartbeat_timeout` that holds an active group is fenced
    through its BMC by a peer, then its groups fail over (only servers with a `bmc`)."""
    fence_retry_after: Duration = timedelta(seconds=10)
    """After every fencer failed, the fence is tried again after this, doubling up to 5 min."""
    dead_letter_max_length: int = Field(default=100_000, gt=0)
    """`mrwbus.dead` keeps at most this many dead letters; the oldest go first."""
    dead_letter_ttl: Duration = timedelta(days=14)
    """A dead letter is dropped this long after it was dead-lettered: the time an operator
    has to see it and replay it (`mrwbus dead`)."""

    history_max_age: Duration = timedelta(days=90)
    """How long the history stream (`mrwbus.history`) keeps what happened (`x-max-age`; fixed
    when the stream is first declared: change it later with a policy, docs/history.md)."""

    def dead_letter_limits(self) -> DeadLetterLimits:
        return DeadLetterLimits(self.dead_letter_max_length, self.dead_letter_ttl)


class HandlerConfig(Strict):
    """A command line the reference agent runs, given the command's facts as MRWBUS_* variables."""

    run: str = Field(min_length=1)
    timeout: Duration = timedelta(seconds=60)


HANDLER_NAMES = (
    "probe",
    "restart",
    "failover.stop",
    "failover.start",
    "script",
    "before_script",
    *(f"final_action.{action.value}" for action in FinalAction if action is not FinalAction.NONE),
)
"""What an agent handler may be configured for; dangerous final actions only run when listed."""


class AgentConfig(Strict):
    """The reference node agent (`mrwbus agent`): its handlers, and per-group overrides."""

    heartbeat_interval: Duration = timedelta(seconds=5)
    probe_interval: Duration = timedelta(seconds=10)
    """How often the agent runs its `probe` handlers (also at start and after every command)."""
    state_dir: str = "var/agent"
    """Where each agent keeps the journal of commands it handled (per server)."""
    handlers: dict[str, HandlerConfig] = Field(default_factory=dict)
    groups: dict[Name, dict[str, HandlerConfig]] = Field(default_factory=dict)
    max_command_age: Duration = timedelta(minutes=5)
    """A command issued longer ago than this is refused: a replayed or long-stuck one."""
    backend: Literal["handlers", "pacemaker"] = "handlers"
    """Who carries commands out: the handlers (shell, OCF), or Pacemaker (docs/pacemaker.md)."""
    pacemaker: PacemakerConfig = PacemakerConfig()


class SecurityConfig(Strict):
    """Who is trusted (docs/security.md)."""

    verify_senders: bool = True
    """Accept messages only from the provisioned users that may send them (`mrwbus provision`).
    False only for a single-user development broker (guest): anyone with broker credentials
    can then stop groups and shut servers down."""


class ClusterConfig(Strict):
    servers: dict[Name, ServerConfig | None] = Field(min_length=1)
    groups: dict[Name, GroupConfig] = Field(default_factory=dict)
    monitors: dict[Name, MonitorConfig] = Field(default_factory=dict)
    service: ServiceConfig = ServiceConfig()
    agent: AgentConfig = AgentConfig()
    relay: RelayConfig = RelayConfig()
    security: SecurityConfig = SecurityConfig()
    alerting: AlertingConfig = AlertingConfig()
    resources: dict[Name, ResourceConfig] = Field(default_factory=dict)
    """Group resources run by OCF resource agents (docs/resources.md)."""

    # --- derived lookups, used by the core ---------------------------------------------

    def server_group(self, server: str) -> str | None:
        config = self.servers.get(server)
        return config.server_group if config else None

    def ocf_groups(self) -> dict[str, list[str]]:
        """Group -> its resources, for every group whose resources are run by OCF agents."""
        return {
            name: list(group.resources)
            for name, group in self.groups.items()
            if any(resource in self.resources for resource in group.resources)
        }

    def bmc_of(self, server: str) -> BmcConfig | None:
        config = self.servers.get(server)
        return config.bmc if config else None

    def may_fence(self, fencer: str, target: str) -> bool:
        """Whether `fencer`'s agent may fence `target` (never itself; `fenced_by` if set)."""
        bmc = self.bmc_of(target)
        if bmc is None or fencer == target or fencer not in self.servers:
            return False
        return bmc.fenced_by is None or fencer in bmc.fenced_by

    def group_of_resource(self, resource: str) -> str | None:
        return self.resource_owners.get(resource)

    @cached_property
    def resource_owners(self) -> dict[str, str]:
        """resource -> the first group listing it: a fault's decision asks, so no scan of every
        group (a large configuration has hundreds)."""
        owners: dict[str, str] = {}
        for name, group in self.groups.items():
            for resource in group.resources:
                owners.setdefault(resource, name)
        return owners

    def monitored_servers(self, monitor: str) -> list[str]:
        """The servers a monitor watches: its `servers` list, or every server."""
        config = self.monitors[monitor]
        return list(config.servers) if config.servers is not None else list(self.servers)

    def keyword_for(self, monitor: str, server: str) -> str:
        """The device a monitor watches on a server: the override, else the common keyword."""
        config = self.monitors[monitor]
        override = (config.servers or {}).get(server)
        if override is not None and override.keyword is not None:
            return override.keyword
        return config.keyword
