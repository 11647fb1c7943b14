"""The `relay:` section of the cluster YAML, as far as the configuration knows it.

The configuration sits below the relay (docs/architecture.md), so it does not know the relay's
sources: it checks the keys every relay has (`debounce`, `spool_dir`, `publish_user_id`,
`servers` and that each of those servers exists) and keeps every other key (`nic`, `fc`,
`logs`, `exec`, ...) as written. Each source declares its key and its own configuration model
next to its code (`mrwbus.relay.sources`, registered in `mrwbus.relay.registry`), and the
relay's check, handed to `mrwbus.config.loading.parse_config` by every verb
(`mrwbus.relay.registry.load_config`), validates those keys with the same key paths:

```yaml
relay:
  debounce: 2s                  # a link must stay down (or up again) this long to count
  spool_dir: var/relay          # <spool_dir>/<server>.spool keeps what the broker has not confirmed
  nic: {interfaces: [eth0, bond0]}
  servers:
    server2: {nic: {interfaces: [eth1]}}
```

The common settings apply to every server; `relay.servers.<name>` replaces any of them on one
server. A key given there replaces the common one as a whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from mrwbus.errors import ConfigIssue
from mrwbus.messages import Name


def _duration(value: Any) -> timedelta:
    # Imported here: mrwbus.config.model imports this module to build `ClusterConfig`.
    from mrwbus.config.durations import parse_duration

    return parse_duration(value)


Duration = Annotated[timedelta, BeforeValidator(_duration)]

DEFAULT_DEBOUNCE = timedelta(seconds=2)


class RelayServerConfig(BaseModel):
    """What one server's relay does differently; its sources' keys are kept as written."""

    model_config = ConfigDict(extra="allow", frozen=True)

    debounce: Duration | None = None

    def source_sections(self) -> dict[str, Any]:
        """The keys that are not the relay's own: its sources', validated by the relay."""
        return dict(self.model_extra or {})


class RelayConfig(RelayServerConfig):
    """The `relay:` section: the common settings, and `servers` for what differs per server."""

    spool_dir: str = "var/relay"
    publish_user_id: bool = True
    """Set the AMQP `user_id` of every fault to the connection's user, which the broker verifies."""
    servers: dict[Name, RelayServerConfig] = Field(default_factory=dict)


RELAY_KEYS = frozenset(RelayConfig.model_fields)
SERVER_KEYS = frozenset(RelayServerConfig.model_fields)


def check_relay(relay: RelayConfig, servers: set[str]) -> Iterator[ConfigIssue]:
    """The cross-check the relay's sources need not know: every server named exists."""
    for server in relay.servers:
        if server not in servers:
            yield ConfigIssue(f"relay.servers.{server}", f"unknown server {server!r}")
