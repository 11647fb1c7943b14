"""Connecting to RabbitMQ: retried with backoff, URLs logged without their passwords."""

from __future__ import annotations

import asyncio
import contextlib
import logging

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

from mrwbus.errors import BrokerUnavailable
from mrwbus.settings import connection_parameters

log = logging.getLogger(__name__)

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    OSError,
    aiormq.exceptions.AMQPConnectionError,
    aiormq.exceptions.ChannelInvalidStateError,
    TimeoutError,
)
"""What counts as the broker being away; anything else is a bug and is not retried."""


def redact(url: str) -> str:
    """The URL without its password, fit for a log line."""
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else url


async def connect(
    url: str, *, attempts: int | None = None, name: str = "mrwbus"
) -> AbstractConnection:
    """Connect, retrying with exponential backoff (forever unless `attempts` is given).

    The password file and TLS files named in the URL are read on each attempt (see
    `mrwbus.settings`), so a rotated password is picked up by the next reconnect."""

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("broker %s unreachable (%s); retrying", redact(url), error)

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(CONNECTION_ERRORS),
        wait=wait_exponential(multiplier=0.2, max=5),
        stop=stop_after_attempt(attempts) if attempts else stop_never,
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                parameters = connection_parameters(url)
                return await aio_pika.connect(
                    parameters.url,
                    ssl_context=parameters.ssl_context,
                    client_properties={"connection_name": name},
                    timeout=10,
                )
    except CONNECTION_ERRORS as exc:
        raise BrokerUnavailable(
            f"cannot reach RabbitMQ at {redact(url)}: {exc or type(exc).__name__}"
        ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def connection_user(channel: AbstractChannel) -> str | None:
    """The user a channel's connection logged in as: what the broker accepts as `user_id`."""
    connection = getattr(channel, "_connection", None)
    url = getattr(connection, "url", None)
    return url.user if isinstance(url, URL) and url.user else None


async def connect_unless_stopped(
    url: str, stop: asyncio.Event, *, name: str
) -> AbstractConnection | None:
    """`connect`, retrying until connected or until `stop` is set (then None)."""
    connecting = asyncio.create_task(connect(url, name=name))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if connecting.done():
        return connecting.result()
    connecting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await connecting
    return None
