"""Runtime settings: from command-line flags, else the environment, else the defaults."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_AMQP_URL = "amqp://guest:guest@localhost/"

DEFAULT_HEARTBEAT = 3
"""Seconds: short enough that a silent network (no FIN, no RST) is noticed, and the leader
lock released by the broker, well within 10 s; see docs/durability.md."""

DEFAULT_REPLICAS = 3
"""Copies of each quorum queue and of the journal stream; RabbitMQ takes every node of a
smaller cluster."""


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


def amqp_urls(flags: str | Sequence[str] | None = None) -> list[str]:
    """Every broker URL given: `--amqp-url` (repeatable), else `MRWBUS_AMQP_URL`, ... as
    `amqp_url` says; each value may hold several URLs separated by commas (a cluster's nodes)."""
    given = [flags] if isinstance(flags, str) else list(flags or [])
    values = given or [amqp_url()]
    urls = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if not urls:
        raise _config_error("--amqp-url / MRWBUS_AMQP_URL", "names no broker URL")
    return urls


def heartbeat() -> int:
    """`MRWBUS_HEARTBEAT` (seconds, 1 or more), else `DEFAULT_HEARTBEAT`; a URL's own
    `?heartbeat=` wins for that URL."""
    return _positive_int("MRWBUS_HEARTBEAT", DEFAULT_HEARTBEAT)


def replicas() -> int:
    """`MRWBUS_REPLICAS`, else `DEFAULT_REPLICAS`: the replication factor declared on quorum
    queues (`x-quorum-initial-group-size`) and the journal (`x-initial-cluster-size`)."""
    return _positive_int("MRWBUS_REPLICAS", DEFAULT_REPLICAS)


def _positive_int(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise _config_error(name, f"must be a whole number of 1 or more, not {text!r}")
    return int(text)


def _config_error(source: str, what: str) -> Exception:
    from mrwbus.errors import ConfigError, ConfigIssue

    return ConfigError(f"the environment ({source})", [ConfigIssue("", what)])


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
    amqp_url: str | Sequence[str] = DEFAULT_AMQP_URL
    """One broker URL, or every node of a cluster (tried in a shuffled order)."""
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
