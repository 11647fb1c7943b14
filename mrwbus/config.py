"""The cluster configuration: YAML in, a validated `ClusterConfig` out.

Validation runs in two passes: pydantic checks each value's shape, then
`config_checks.check_references` checks that every name used is defined and that no setting
would silently do nothing. Every problem is reported with its key path, e.g.
`config/cluster.yaml: monitors.mrw1.keyword: is 1100 bytes, at most 1023 allowed`.
"""

from __future__ import annotations

import gc
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from mrwbus.bus.topology import DeadLetterLimits
from mrwbus.config_yaml import yaml_data
from mrwbus.errors import ConfigError, ConfigIssue
from mrwbus.messages import Action, Category, FinalAction, Keyword, Name
from mrwbus.ocf.config import ResourceConfig
from mrwbus.relay.config import RelayConfig

ALL_GROUPS = "all_groups"
"""The recovery target that means every group active on the server."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> timedelta:
    """`90`, `90s`, `10m`, `2h` or `1d` -> a timedelta; bare numbers are seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 90, 90s, 10m or 2h")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration such as 90, 90s, 10m or 2h")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    if math.isnan(seconds):
        raise ValueError(f"{value!r} is not a duration such as 90, 90s, 10m or 2h")
    if seconds <= 0:
        raise ValueError("must be longer than zero")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{value!r} is too long a duration") from None


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(Strict):
    server_group: Name | None = None


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
    dead_letter_max_length: int = Field(default=100_000, gt=0)
    """`mrwbus.dead` keeps at most this many dead letters; the oldest go first."""
    dead_letter_ttl: Duration = timedelta(days=14)
    """A dead letter is dropped this long after it was dead-lettered: the time an operator
    has to see it and replay it (`mrwbus dead`)."""

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


class SecurityConfig(Strict):
    """Who is trusted (docs/security.md)."""

    verify_senders: bool = True
    """Accept messages only from the provisioned users that may send them (`mrwbus provision`).
    False only for a single-user development broker (guest): anyone with broker credentials
    can then stop groups and shut servers down."""


class ClusterConfig(Strict):
    servers: dict[Name, ServerConfig | None] = Field(min_length=1)
    groups: dict[Name, GroupConfig] = Field(default_factory=dict)
    resources: dict[Name, ResourceConfig] = Field(default_factory=dict)
    """Group resources run by OCF resource agents (docs/resources.md)."""
    monitors: dict[Name, MonitorConfig] = Field(default_factory=dict)
    service: ServiceConfig = ServiceConfig()
    agent: AgentConfig = AgentConfig()
    relay: RelayConfig = RelayConfig()
    security: SecurityConfig = SecurityConfig()

    # --- derived lookups, used by the core ---------------------------------------------

    def server_group(self, server: str) -> str | None:
        config = self.servers.get(server)
        return config.server_group if config else None

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


def load_config(path: str | Path) -> ClusterConfig:
    """Read and validate a configuration file; raise `ConfigError` listing every problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [ConfigIssue("", f"cannot be read: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [ConfigIssue("", "is not valid UTF-8")]) from exc
    return parse_config(text, source)


def parse_config(text: str, source: str = "<config>") -> ClusterConfig:
    # A large configuration is some 10^5 small objects that all live on: without the pause,
    # the cyclic collector walks them again and again (over half the time at 10,000 monitors).
    with _collector_paused():
        return _parse_config(text, source)


@contextmanager
def _collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _parse_config(text: str, source: str) -> ClusterConfig:
    try:
        data, duplicates = yaml_data(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, [ConfigIssue("", f"is not valid YAML: {exc}")]) from exc
    if not isinstance(data, dict):
        raise ConfigError(
            source,
            [*duplicates, ConfigIssue("", "must be a mapping with servers, groups, monitors")],
        )
    # Imported here: the checks read the models defined above (and the core's target lookup).
    from mrwbus.config_checks import check_references, references_despite

    try:
        config = ClusterConfig.model_validate(data)
    except ValidationError as exc:
        # Every error in one run: the names are checked too, on what is left of the file
        # once the entries with type errors are taken out.
        shape = _issues_from(exc)
        names = references_despite(data, [error["loc"] for error in exc.errors()])
        raise ConfigError(source, [*duplicates, *shape, *names]) from exc
    issues = [*duplicates, *check_references(config)]
    if issues:
        raise ConfigError(source, issues)
    return config


def _issues_from(error: ValidationError) -> list[ConfigIssue]:
    issues = []
    for detail in error.errors():
        path = ".".join(str(part) for part in detail["loc"] if not _is_union_tag(part))
        problem = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "extra_forbidden":
            problem = "is not a known key"
        elif detail["type"] == "missing":
            problem = "is required"
        elif detail["type"] == "string_pattern_mismatch":
            problem = f"{detail['input']!r} is not a valid name (letters, digits, _ and -)"
        elif detail["type"] == "enum":
            problem = f"{detail['input']!r} is not one of: {detail['ctx']['expected']}"
        issues.append(ConfigIssue(path, problem))
    return _dedupe(issues)


def _is_union_tag(part: int | str) -> bool:
    # pydantic names the union member tried (e.g. `literal['always']`); it is not a key.
    return isinstance(part, str) and (
        "[" in part or part in {"ActiveTiming", "MonitorServerConfig"}
    )


def _dedupe(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    seen: dict[str, ConfigIssue] = {}
    for issue in issues:
        # A union reports one error per member; the first says enough for an operator.
        seen.setdefault(issue.path, issue)
    return list(seen.values())
