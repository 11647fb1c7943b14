"""Connecting to RabbitMQ: one attempt to one node (`open_connection`), or a one-shot client's
connection tried once on each of a cluster's nodes in a shuffled order so that clients spread
(`connect`, `connect_any`), with short heartbeats, URLs logged without their passwords.

There is no back-off here: a long-running client (the service, an agent, the relay) runs its
sessions through `bus.session.SessionRunner`, the one place that retries with back-off; a
one-shot verb tries each node once and reports what it met."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection
from yarl import URL

from mrwbus.config.settings import connection_parameters, heartbeat, split_urls
from mrwbus.errors import BrokerUnavailable

log = logging.getLogger(__name__)

Urls = str | Sequence[str]
"""One broker URL, or every node of a cluster."""

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError,
    TimeoutError,
)
"""What counts as the broker being away once connected; anything else is not a broker outage
(a disk error, a bug) and never travels the reconnect path."""

CONNECT_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, OSError)
"""What a connection attempt may fail with: also any socket error (a name that does not
resolve, a route that does not exist)."""


def redact(url: str) -> str:
    """The URL without its password, fit for a log line."""
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else url


def url_list(urls: Urls, *, shuffle: bool = False) -> list[str]:
    """One URL or several (each value may hold several separated by commas, read by
    `config.settings.split_urls`), as a list; several are tried in turn (a cluster's nodes).
    Shuffled, each client starts on a different node and the cluster's connections spread."""
    found = split_urls(urls)
    if not found:
        raise ValueError("no broker URL given")
    return random.sample(found, len(found)) if shuffle else found


def node_of(url: str) -> str:
    """Which node a URL reaches, for status and logs: host:port, no user, no password."""
    parsed = URL(url)
    port = parsed.explicit_port or (5671 if parsed.scheme == "amqps" else 5672)
    return f"{parsed.host}:{port}"


async def open_connection(url: str, name: str) -> AbstractConnection:
    """One connection attempt, named so the management UI shows who is connected.

    The password file and TLS files named in the URL are read here, on each attempt (see
    `mrwbus.config.settings.connection_parameters`), so a rotated password is picked up by the next
    reconnect and every client (service, agent, relay, CLI) gets them through this one place.
    Heartbeats are `settings.heartbeat()` seconds unless the URL says `?heartbeat=`: a silent
    network is then noticed by both sides in a few seconds, not after a minute."""
    parameters = connection_parameters(url)
    resolved = parameters.url
    if "heartbeat" not in resolved.query:
        resolved = resolved.update_query(heartbeat=heartbeat())
    return await aio_pika.connect(
        resolved,
        ssl_context=parameters.ssl_context,
        client_properties={"connection_name": name},
        timeout=10,
    )


async def connect_any(urls: Urls, name: str) -> AbstractConnection:
    """A one-shot client's connection: each node tried once, in a shuffled order."""
    return await connect(urls, name=name)


async def connect(
    urls: Urls, *, attempts: int | None = None, name: str = "mrwbus"
) -> AbstractConnection:
    """Connect to the first of `urls` (shuffled) that answers, making `attempts` attempts in
    all (default: one per URL), at once and without back-off: a one-shot verb reports a broker
    it cannot reach instead of waiting for it; `BrokerUnavailable` names the last failure."""
    candidates = url_list(urls, shuffle=True)
    error: BaseException | None = None
    url = candidates[0]
    for attempt in range(attempts or len(candidates)):
        url = candidates[attempt % len(candidates)]
        try:
            return await open_connection(url, name)
        except CONNECT_ERRORS as exc:
            error = exc
            log.warning("broker %s unreachable (%s)", redact(url), exc or type(exc).__name__)
    raise BrokerUnavailable(
        f"cannot reach RabbitMQ at {redact(url)}: {error or type(error).__name__}"
    ) from error


def connection_user(channel: AbstractChannel) -> str | None:
    """The user a channel's connection logged in as: what the broker accepts as `user_id`."""
    connection = getattr(channel, "_connection", None)
    url = getattr(connection, "url", None)
    return url.user if isinstance(url, URL) and url.user else None


def connection_closed(connection: AbstractConnection) -> bool:
    """Closed as aio-pika sees it, or as aiormq under it already does (aio-pika's object hears
    of a close a moment after aiormq's)."""
    transport = connection.transport
    return connection.is_closed or transport is None or transport.connection.is_closed
