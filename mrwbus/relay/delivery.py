"""The relay's broker-facing part: connect, and send the spool's faults in order, confirmed.

Kept behind one small interface (`FaultLink`: publish one fault and return once the broker
confirmed it) so that the transport under it can change without the relay noticing. A fault
leaves the spool only after its confirm; a broker that is away, or that returns the fault
because no queue is bound yet, leaves it there, and the delivery tries again with back-off,
always from the oldest fault, so faults arrive in the order they were seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from aio_pika.abc import AbstractConnection
from aiormq.exceptions import PublishError
from yarl import URL

from mrwbus.bus.connection import CONNECTION_ERRORS, Urls, connect, redact, url_list
from mrwbus.bus.publisher import Publisher
from mrwbus.bus.topology import FAULTS, declare_exchanges
from mrwbus.config.settings import heartbeat
from mrwbus.errors import BrokerUnavailable
from mrwbus.messages import FaultNotification
from mrwbus.relay.spool import Spool

log = logging.getLogger(__name__)

RETRY_FIRST = 0.2
RETRY_MAX = 5.0
"""Seconds between attempts to reach the broker: doubling from the first to the most."""


class FaultLink(Protocol):
    async def publish(self, fault: FaultNotification) -> None:
        """Return once the broker confirmed the fault; raise if it did not."""
        ...

    async def close(self) -> None: ...

    def is_open(self) -> bool:
        """False once the connection under it is known to be gone."""
        ...


class PublisherLink:
    """A `FaultLink` over one connection, publishing through `bus.publisher.Publisher`."""

    def __init__(self, connection: AbstractConnection, publisher: Publisher) -> None:
        self.connection = connection
        self.publisher = publisher

    @classmethod
    async def open(cls, url: str, server: str, *, set_user_id: bool) -> PublisherLink:
        connection = await connect(url, attempts=1, name=f"mrwbus-relay-{server}")
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            exchanges = await declare_exchanges(channel)
        except BaseException:
            await connection.close()
            raise
        # The broker checks user_id against the connection's user; aio-pika logs in as guest
        # when the URL names nobody.
        user = (URL(url).user or "guest") if set_user_id else None
        log.info("connected to %s", redact(url))
        return cls(connection, Publisher(channel, exchanges, user_id=user))

    async def publish(self, fault: FaultNotification) -> None:
        # A confirm takes milliseconds, a second or two in a cluster's election window; two
        # heartbeats without one is a silent broker: the link is dropped (TimeoutError) and the
        # fault, still spooled, goes to the next node.
        await asyncio.wait_for(
            self.publisher.publish(FAULTS, fault.routing_key, fault), 2 * heartbeat()
        )

    async def close(self) -> None:
        with contextlib.suppress(*CONNECTION_ERRORS, RuntimeError):
            await self.connection.close()

    def is_open(self) -> bool:
        return not self.connection.is_closed


def broker_urls(url: Urls) -> list[str]:
    """`amqp://a/,amqp://b/` (or a list of URLs) -> every node of a cluster, shuffled so that
    relays spread."""
    given = [url] if isinstance(url, str) else list(url)
    urls = [part.strip() for value in given for part in value.split(",") if part.strip()]
    return url_list(urls or given, shuffle=True)


LinkFactory = Callable[[], Awaitable[FaultLink]]


@dataclass
class DeliveryStatus:
    confirmed: int = 0
    attempts_failed: int = 0
    last_error: str | None = None


class Delivery:
    """Sends what the spool holds, oldest first, until cancelled; `wake()` after adding."""

    def __init__(self, spool: Spool, open_link: LinkFactory) -> None:
        self.spool = spool
        self.open_link = open_link
        self.status = DeliveryStatus()
        self._wake = asyncio.Event()
        self._link: FaultLink | None = None

    def wake(self) -> None:
        self._wake.set()

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link.is_open()

    async def run(self) -> None:
        retry = RETRY_FIRST
        try:
            while True:
                if not self.spool.pending:
                    await self._wake.wait()
                    self._wake.clear()
                    continue
                if await self._send_pending():
                    retry = RETRY_FIRST
                    continue
                # Woken early by a new fault is fine: it is sent after the older ones anyway.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), retry)
                self._wake.clear()
                retry = min(retry * 2, RETRY_MAX)
        finally:
            await self._drop_link()

    async def _send_pending(self) -> bool:
        """Send everything pending; False when the broker did not take it all (retry later)."""
        try:
            if self._link is None:
                self._link = await self.open_link()
            for fault in self.spool.pending:
                await self._link.publish(fault)
                self.spool.done(fault.id)
                self.status.confirmed += 1
                log.info("fault %s (%s %s) confirmed", fault.id, fault.routing_key, fault.device)
            return True
        except PublishError:
            self._failed(
                "the broker returned the fault: no queue takes faults yet (start the service)"
            )
        except BrokerUnavailable as exc:
            self._failed(str(exc))
        except CONNECTION_ERRORS as exc:
            self._failed(f"lost the broker: {exc or type(exc).__name__}")
        await self._drop_link()
        return False

    def _failed(self, reason: str) -> None:
        self.status.attempts_failed += 1
        if reason != self.status.last_error:
            log.warning("%d fault(s) spooled, not sent: %s", len(self.spool.pending), reason)
        self.status.last_error = reason

    async def _drop_link(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            await link.close()
