"""Runtime settings: from command-line flags, else the environment, else the defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_AMQP_URL = "amqp://guest:guest@localhost/"


def management_url() -> str | None:
    """`MRWBUS_MANAGEMENT_URL`: RabbitMQ's management API, for unacknowledged counts and ages."""
    return os.environ.get("MRWBUS_MANAGEMENT_URL") or None


def amqp_url(flag: str | None = None) -> str:
    """`--amqp-url`, else `MRWBUS_AMQP_URL`, else the file `MRWBUS_AMQP_URL_FILE` names, else the
    local broker.

    The file is how systemd's `LoadCredential=` (packaging/systemd/) and container secrets hand
    over a URL with a password in it, which then sits in no environment and no command line.
    """
    if flag:
        return flag
    if url := os.environ.get("MRWBUS_AMQP_URL"):
        return url
    if path := os.environ.get("MRWBUS_AMQP_URL_FILE"):
        return _read_url_file(path)
    return DEFAULT_AMQP_URL


def _read_url_file(path: str) -> str:
    from mrwbus.errors import ConfigError, ConfigIssue

    try:
        url = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "is not UTF-8 text"
        raise ConfigError(
            f"{path} (MRWBUS_AMQP_URL_FILE)", [ConfigIssue("", f"cannot be read: {reason}")]
        ) from exc
    if not url:
        raise ConfigError(f"{path} (MRWBUS_AMQP_URL_FILE)", [ConfigIssue("", "is empty")])
    return url


@dataclass(frozen=True)
class ServiceSettings:
    amqp_url: str = DEFAULT_AMQP_URL
    prefetch: int = 256
    """Faults in flight at once; each monitor still handles its own in order."""
    shutdown_grace: float = 10.0
    """Seconds SIGTERM waits for in-flight faults to finish before closing."""
    watchdog_interval: float = 1.0
    """How often the session checks that its consumers are still attached."""
    standby_poll: float = 0.5
    """How often a standby replica tries to take the leader lock."""
    snapshot_every: int = 10_000
    """Journal entries between snapshots of the state."""
    management_url: str | None = None
    """RabbitMQ's management API; without it queue figures come from passive declares."""
    queue_read_interval: float = 2.0
    """Seconds between two readings of the queues for status, the page and /metrics."""
