"""Runtime settings: from command-line flags, else the environment, else the defaults.

A broker URL is the one value passed around; besides host, user and vhost it may name, in its
query, a `password_file` and the TLS files (`cafile`, `certfile`, `keyfile`). The password itself
is read from its file only when connecting (`connection_parameters`), so it never sits in a URL
that is logged, in an environment dump or in argv, and a rotated password takes effect on the
next reconnect.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from yarl import URL

from mrwbus.errors import MrwbusError

DEFAULT_AMQP_URL = "amqp://guest:guest@localhost/"

DEFAULT_HEARTBEAT = 3
"""Seconds: short enough that a silent network (no FIN, no RST) is noticed, and the leader
lock released by the broker, well within 10 s; see docs/durability.md."""

DEFAULT_REPLICAS = 3
"""Copies of each quorum queue and of the journal stream; RabbitMQ takes every node of a
smaller cluster."""

PASSWORD_FILE = "password_file"
TLS_QUERY = {"ca": "cafile", "cert": "certfile", "key": "keyfile"}
"""Our TLS option -> the URL query key that carries it (aiormq's own names)."""
TLS_ENV = {"ca": "MRWBUS_TLS_CA", "cert": "MRWBUS_TLS_CERT", "key": "MRWBUS_TLS_KEY"}


def management_url() -> str | None:
    """`MRWBUS_MANAGEMENT_URL`: RabbitMQ's management API, for unacknowledged counts and ages."""
    return os.environ.get("MRWBUS_MANAGEMENT_URL") or None


def amqp_url(
    flag: str | Sequence[str] | None = None,
    *,
    password_file: str | None = None,
    tls_ca: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> str:
    """`amqp_urls` as one string, the URLs separated by commas (as `MRWBUS_AMQP_URL` takes
    them): for what passes a single value along, such as a child process's environment."""
    return ",".join(
        amqp_urls(
            flag, password_file=password_file, tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key
        )
    )


def amqp_urls(
    flags: str | Sequence[str] | None = None,
    *,
    password_file: str | None = None,
    tls_ca: str | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> list[str]:
    """Every broker URL given: `--amqp-url` (repeatable), else `MRWBUS_AMQP_URL`, else the file
    `MRWBUS_AMQP_URL_FILE` names, else the local broker; each value may hold several URLs
    separated by commas (a cluster's nodes). Each URL gets the password file (`--password-file`,
    else `MRWBUS_AMQP_PASSWORD_FILE`) and the TLS files (`--tls-*`, else `MRWBUS_TLS_*`) added
    to its query. Nothing secret is added: only file names.

    The URL file is how systemd's `LoadCredential=` (packaging/systemd/) and container secrets
    hand over a URL with a password in it, which then sits in no environment and no command
    line; a password file does the same for a URL that names only the user.
    """
    values = [flags] if isinstance(flags, str) else list(flags or [])
    if not values:
        url = os.environ.get("MRWBUS_AMQP_URL")
        if not url and (path := os.environ.get("MRWBUS_AMQP_URL_FILE")):
            url = _read_url_file(path)
        values = [url or DEFAULT_AMQP_URL]
    urls = split_urls(values)
    if not urls:
        raise _config_error("--amqp-url / MRWBUS_AMQP_URL", "names no broker URL")
    extra: dict[str, str] = {}
    password_file = password_file or os.environ.get("MRWBUS_AMQP_PASSWORD_FILE")
    if password_file:
        extra[PASSWORD_FILE] = password_file
    given = {"ca": tls_ca, "cert": tls_cert, "key": tls_key}
    for option, query_key in TLS_QUERY.items():
        value = given[option] or os.environ.get(TLS_ENV[option])
        if value:
            extra[query_key] = value
    if not extra:
        return urls
    return [str(URL(url).update_query(extra)) for url in urls]


def split_urls(values: str | Sequence[str]) -> list[str]:
    """The one reading of broker URLs: each value may hold several separated by commas (a
    cluster's nodes, as `MRWBUS_AMQP_URL` takes them); blanks around them are dropped."""
    given = [values] if isinstance(values, str) else list(values)
    return [part.strip() for value in given for part in value.split(",") if part.strip()]


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
class ConnectionParameters:
    """What `aio_pika.connect` takes: the URL with the password filled in (never log it: log
    `redacted`), and a TLS context for `amqps://` URLs."""

    url: URL = field(repr=False)
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)

    @property
    def user(self) -> str:
        return self.url.user or "guest"

    @property
    def redacted(self) -> str:
        return str(self.url.with_password("***")) if self.url.password else str(self.url)


def read_password(path: str | Path) -> str:
    """The password in a file (one line; surrounding whitespace ignored)."""
    try:
        password = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise MrwbusError(f"cannot read the password file {path}: {exc.strerror}") from exc
    if not password:
        raise MrwbusError(f"the password file {path} is empty")
    return password


def tls_context(
    ca: str | None = None, cert: str | None = None, key: str | None = None, *, verify: bool = True
) -> ssl.SSLContext:
    """A client TLS context: the peer's certificate is verified against `ca` (else the system's
    CAs) and its host name checked, unless `verify` is False; `cert`/`key` authenticate us."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert:
        context.load_cert_chain(cert, key)
    elif key:
        raise MrwbusError("a TLS key was given without its certificate (--tls-cert)")
    return context


def connection_parameters(url: str) -> ConnectionParameters:
    """Resolve a URL from `amqp_url`: read its password file, build its TLS context, and strip
    both from the query (the broker and aiormq never see them)."""
    parsed = URL(url)
    query = dict(parsed.query)
    password_file = query.pop(PASSWORD_FILE, None)
    files = {option: query.pop(key, None) for option, key in TLS_QUERY.items()}
    verify = query.pop("no_verify_ssl", "0") == "0"
    resolved = parsed.with_query(query)
    if password_file:
        resolved = resolved.with_password(read_password(password_file))
    context = None
    if parsed.scheme == "amqps":
        try:
            context = tls_context(files["ca"], files["cert"], files["key"], verify=verify)
        except (OSError, ssl.SSLError) as exc:
            raise MrwbusError(f"cannot load the TLS files: {exc}") from exc
    elif any(files.values()):
        raise MrwbusError("TLS files were given for a plain amqp:// URL; use amqps://")
    return ConnectionParameters(resolved, context)


@dataclass(frozen=True)
class ServiceSettings:
    amqp_url: str | Sequence[str] = DEFAULT_AMQP_URL
    """One broker URL, or every node of a cluster (tried in a shuffled order)."""
    prefetch: int = 256
    """Faults in flight at once; each monitor still handles its own in order."""
    shutdown_grace: float = 1.5
    """Seconds SIGTERM waits for in-flight faults to finish before closing: a decision takes
    milliseconds, so only a broker that stopped confirming is cut short, and the unacked fault
    is redelivered to the next replica. With the bounded cancels and close, a stop ends within
    5 s (tests/integration/test_stop.py)."""
    watchdog_interval: float = 1.0
    """How often the session checks that its consumers are still attached."""
    standby_poll: float = 0.5
    """How often a standby replica tries to take the leader lock when nothing told it to try
    sooner (the leader token, silent beats: `bus.leader`). Each refusal is an error line in the
    broker's log, so not much more often."""
    snapshot_every: int = 10_000
    """Journal entries between snapshots of the state."""
    management_url: str | None = None
    """RabbitMQ's management API; without it queue figures come from passive declares."""
    queue_read_interval: float = 2.0
    """Seconds between two readings of the queues for status, the page and /metrics."""
