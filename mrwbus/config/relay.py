"""The `relay:` section of the cluster YAML: what `mrwbus relay` watches on each server.

The common settings apply to every server; `relay.servers.<name>` replaces any of them on one
server (the console's per-server tab). A key given there replaces the common one as a whole:
`servers: {server2: {nic: {interfaces: [eth1]}}}` watches only eth1 on server2.

```yaml
relay:
  debounce: 2s                  # a link must stay down (or up again) this long to count
  spool_dir: var/relay          # <spool_dir>/<server>.spool keeps what the broker has not confirmed
  nic: {interfaces: [eth0, bond0]}
  fc: {sysfs: /sys}             # every /sys/class/fc_host/host*; `hosts: [host3]` for some
  logs:
    kernel:
      path: /dev/kmsg
      patterns:
        - {name: multipath-path-failed, category: SPS,
           regex: 'multipath: (?P<device>[0-9]+:[0-9]+): Failing path'}
  exec:
    vendor-tool: {run: /opt/vendor/bin/watch --json}
  servers:
    server2: {nic: {interfaces: [eth1]}}
```

Validated by pydantic here (shapes, regular expressions) and by `check_relay` (names of
servers), called from `mrwbus.config.model` so that `check-config` reports every problem with its key
path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from mrwbus.errors import ConfigIssue
from mrwbus.messages import Category, Name

IFNAME_PATTERN = r"^[^\s/:]{1,15}$"
"""A Linux interface name: at most 15 bytes (IFNAMSIZ - 1), no blank, `/` or `:`."""


def _duration(value: Any) -> timedelta:
    # Imported here: mrwbus.config.model imports this module to build `ClusterConfig`.
    from mrwbus.config.durations import parse_duration

    return parse_duration(value)


Duration = Annotated[timedelta, BeforeValidator(_duration)]
InterfaceName = Annotated[str, Field(pattern=IFNAME_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NicSourceConfig(_Strict):
    """Interfaces watched over netlink; bonds and VLANs are devices of their own."""

    interfaces: list[InterfaceName] = Field(default_factory=list)


class FcSourceConfig(_Strict):
    """Fibre Channel HBAs, from `<sysfs>/class/fc_host/<host>/port_state`."""

    sysfs: str = "/sys"
    hosts: list[Annotated[str, Field(pattern=r"^host[0-9]+$")]] = Field(default_factory=list)
    """Empty: every fc_host found."""
    poll: Duration = timedelta(seconds=1)
    """sysfs attributes cannot be watched with inotify, so they are read this often."""


class PatternConfig(_Strict):
    """A regular expression over kernel-log lines; a match is a fault of `category`."""

    name: Name
    category: Category
    regex: str
    device_group: str = "device"
    """The named group of `regex` that holds the device."""
    device_prefix: str = ""
    """Put before the device found: qla2xxx logs the SCSI host number `3`, the HBA is `host3`."""
    state: Literal["error", "recovered"] = "error"

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"is not a valid regular expression: {exc}") from None
        return value

    def compiled(self) -> re.Pattern[str]:
        return re.compile(self.regex)


class LogSourceConfig(_Strict):
    """Lines of `/dev/kmsg` or of a file that is appended to, matched against patterns."""

    path: str = "/dev/kmsg"
    patterns: list[PatternConfig] = Field(min_length=1)


class ExecSourceConfig(_Strict):
    """A program printing JSON lines (category, device, message, state); restarted if it dies."""

    run: str = Field(min_length=1)
    restart_min: Duration = timedelta(seconds=1)
    restart_max: Duration = timedelta(seconds=60)


class RelaySourcesConfig(_Strict):
    """What one server's relay watches; every key is optional (a per-server override)."""

    debounce: Duration | None = None
    nic: NicSourceConfig | None = None
    fc: FcSourceConfig | None = None
    logs: dict[Name, LogSourceConfig] | None = None
    exec: dict[Name, ExecSourceConfig] | None = None


DEFAULT_DEBOUNCE = timedelta(seconds=2)


class RelayConfig(RelaySourcesConfig):
    """The `relay:` section: the common settings, and `servers` for what differs per server."""

    spool_dir: str = "var/relay"
    publish_user_id: bool = True
    """Set the AMQP `user_id` of every fault to the connection's user, which the broker verifies."""
    servers: dict[Name, RelaySourcesConfig] = Field(default_factory=dict)

    def for_server(self, server: str) -> RelaySettings:
        """The settings in force on `server`: its override of each key, else the common one."""
        own = self.servers.get(server, RelaySourcesConfig())

        def pick(key: str) -> Any:
            value = getattr(own, key)
            return getattr(self, key) if value is None else value

        return RelaySettings(
            server=server,
            debounce=pick("debounce") or DEFAULT_DEBOUNCE,
            nic=pick("nic"),
            fc=pick("fc"),
            logs=pick("logs") or {},
            exec=pick("exec") or {},
            spool_dir=self.spool_dir,
            publish_user_id=self.publish_user_id,
        )


@dataclass(frozen=True)
class RelaySettings:
    """One server's relay settings, resolved from the common and per-server configuration."""

    server: str
    debounce: timedelta
    nic: NicSourceConfig | None
    fc: FcSourceConfig | None
    logs: dict[str, LogSourceConfig]
    exec: dict[str, ExecSourceConfig]
    spool_dir: str
    publish_user_id: bool


def check_relay(relay: RelayConfig, servers: set[str]) -> Iterator[ConfigIssue]:
    """The cross-checks pydantic cannot make: known servers, device groups, back-off bounds."""
    for server in relay.servers:
        if server not in servers:
            yield ConfigIssue(f"relay.servers.{server}", f"unknown server {server!r}")
    yield from _check_sources(relay, "relay")
    for server, own in relay.servers.items():
        yield from _check_sources(own, f"relay.servers.{server}")


def _check_sources(sources: RelaySourcesConfig, where: str) -> Iterator[ConfigIssue]:
    for name, log in (sources.logs or {}).items():
        for index, pattern in enumerate(log.patterns):
            groups = pattern.compiled().groupindex
            if pattern.device_group not in groups:
                yield ConfigIssue(
                    f"{where}.logs.{name}.patterns.{index}.regex",
                    f"has no named group {pattern.device_group!r} for the device "
                    f"(write it as (?P<{pattern.device_group}>...))",
                )
    for name, program in (sources.exec or {}).items():
        if program.restart_min > program.restart_max:
            yield ConfigIssue(
                f"{where}.exec.{name}.restart_min", "must not be longer than restart_max"
            )
