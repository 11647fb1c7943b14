"""Connecting to RabbitMQ: retried with backoff over one URL or several (a cluster's nodes, in a
shuffled order so that clients spread), with short heartbeats, URLs logged without their
passwords. A running session (reconnects, consumers, drain) is `bus.session`."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
    wait_exponential,
)
from yarl import URL

from mrwbus.config.settings import connection_parameters, heartbeat
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
    """One URL or several, as a list; several are tried in turn (a cluster's nodes). Shuffled,
    each client starts on a different node and the cluster's connections spread."""
    found = [urls] if isinstance(urls, str) else list(urls)
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
    return await connect(urls, attempts=len(url_list(urls)), name=name)


async def connect(
    urls: Urls, *, attempts: int | None = None, name: str = "mrwbus"
) -> AbstractConnection:
    """Connect, retrying with exponential backoff (forever unless `attempts` is given); each
    attempt takes the next of `urls`, in a shuffled order."""
    candidates = url_list(urls, shuffle=True)

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        url = candidates[(state.attempt_number - 1) % len(candidates)]
        log.warning("broker %s unreachable (%s); retrying", redact(url), error)

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(CONNECT_ERRORS),
        wait=wait_exponential(multiplier=0.2, max=5),
        stop=stop_after_attempt(attempts) if attempts else stop_never,
        before_sleep=before_sleep,
        reraise=True,
    )
    url = candidates[0]
    try:
        async for attempt in retrying:
            with attempt:
                url = candidates[(attempt.retry_state.attempt_number - 1) % len(candidates)]
                return await open_connection(url, name)
    except CONNECT_ERRORS as exc:
        raise BrokerUnavailable(
            f"cannot reach RabbitMQ at {redact(url)}: {exc or type(exc).__name__}"
        ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def connection_user(channel: AbstractChannel) -> str | None:
    """The user a channel's connection logged in as: what the broker accepts as `user_id`."""
    connection = getattr(channel, "_connection", None)
    url = getattr(connection, "url", None)
    return url.user if isinstance(url, URL) and url.user else None
