"""The relay's broker-facing part: send the spool's faults in order, each confirmed.

`Delivery` is the body of a broker session: it sends what the spool holds, oldest first, and
takes a fault out only after its confirm. It sees the broker through one small interface
(`FaultLink`: publish one fault and return once the broker confirmed it), and gets its links
from `Links`; in the daemon that is `SessionLinks`, the shared `bus.session.SessionRunner`:
the one connect, retry and back-off path (0.2 s doubling to 5 s) of the service, the agents and
the relay, with its URL list and its `user_id` rule.

Whatever the broker does with a fault (it is away, it returns the fault because no queue is
bound yet, it refuses the routing key or the topology to this user), the fault stays spooled,
the reason is logged and kept as `last_error` (`/healthz`, `/metrics`), and the session ends:
the runner tries again with back-off, and the fault goes out as soon as the broker takes it,
with no restart of the relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from aiormq.exceptions import ChannelAccessRefused, ChannelNotFoundEntity, PublishError

from mrwbus.bus.connection import Urls
from mrwbus.bus.health import Health
from mrwbus.bus.publisher import Publisher
from mrwbus.bus.session import SESSION_ERRORS, Session, SessionLost, SessionRunner
from mrwbus.bus.topology import FAULTS, declare_exchanges
from mrwbus.config.settings import heartbeat
from mrwbus.messages import FaultNotification
from mrwbus.relay.spool import Spool

log = logging.getLogger(__name__)

IDLE_CHECK = 1.0
"""Seconds between two looks at an idle session (the runner's own probe notices silence)."""


class FaultLink(Protocol):
    async def publish(self, fault: FaultNotification) -> None:
        """Return once the broker confirmed the fault; raise if it did not."""
        ...

    async def idle(self, until: asyncio.Event) -> None:
        """Return once `until` is set; raise as soon as the link is lost."""
        ...

    def proven(self) -> None:
        """The link works (a fault confirmed, or nothing to send): a loss later is renewed at
        once instead of after the back-off."""
        ...


LinkBody = Callable[[FaultLink], Awaitable[None]]


class Links(Protocol):
    async def run(self, stop: asyncio.Event, body: LinkBody) -> None:
        """Hand links to `body`, one after another as they are lost, until `stop` is set."""
        ...


@dataclass
class DeliveryStatus:
    confirmed: int = 0
    attempts_failed: int = 0
    failing: bool = False
    """The last attempt to send failed, and none has worked since."""
    health: Health = field(default_factory=Health)
    """Shared with the session runner and the daemon: one `last_error` for `/healthz`."""

    @property
    def last_error(self) -> str | None:
        return self.health.last_error


class Delivery:
    """Sends what the spool holds, oldest first, until stopped; `wake()` after adding."""

    def __init__(self, spool: Spool, links: Links, health: Health | None = None) -> None:
        self.spool = spool
        self.links = links
        self.status = DeliveryStatus(health=health if health is not None else Health())
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    @property
    def connected(self) -> bool:
        return self.status.health.connected

    async def run(self, stop: asyncio.Event) -> None:
        async def wake_on_stop() -> None:
            await stop.wait()
            self._wake.set()

        waker = asyncio.create_task(wake_on_stop(), name="relay-delivery-stop")
        try:
            await self.links.run(stop, lambda link: self._deliver(link, stop))
        finally:
            waker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waker

    async def _deliver(self, link: FaultLink, stop: asyncio.Event) -> None:
        """One link's life: send everything pending, wait for more, until stopped or lost."""
        while not stop.is_set():
            if not self.spool.pending:
                self.status.failing = False
                link.proven()
            for fault in self.spool.pending:
                if stop.is_set():
                    return
                try:
                    await link.publish(fault)
                except PublishError as exc:
                    raise self._failed(
                        "the broker returned the fault: no queue takes faults yet "
                        "(start the service, or `mrwbus provision`)",
                        exc,
                    ) from exc
                except ChannelAccessRefused as exc:
                    raise self._failed(
                        f"the broker refused the fault ({exc}): this user may not write "
                        f"{fault.routing_key!r} to {FAULTS}",
                        exc,
                    ) from exc
                except SESSION_ERRORS as exc:
                    raise self._failed(
                        f"lost the broker: {exc or type(exc).__name__}", exc
                    ) from exc
                self.spool.done(fault.id)
                self.status.confirmed += 1
                self.status.failing = False
                link.proven()
                log.info("fault %s (%s %s) confirmed", fault.id, fault.routing_key, fault.device)
            if not self.spool.pending:
                await link.idle(self._wake)
                self._wake.clear()

    def _failed(self, reason: str, cause: BaseException) -> SessionLost:
        self.status.attempts_failed += 1
        self.status.failing = True
        if reason != self.status.health.last_error:
            log.warning(
                "%d fault(s) spooled, not sent: %s (%s); retrying with back-off",
                len(self.spool.pending),
                reason,
                type(cause).__name__,
            )
        self.status.health.last_error = reason
        return SessionLost(reason)


class SessionLink:
    """A `FaultLink` over one session of the shared runner."""

    def __init__(self, session: Session, publisher: Publisher) -> None:
        self.session = session
        self.publisher = publisher

    async def publish(self, fault: FaultNotification) -> None:
        # A confirm takes milliseconds, a second or two in a cluster's election window; two
        # heartbeats without one is a silent broker: the session ends (TimeoutError) and the
        # fault, still spooled, goes to the next node.
        await asyncio.wait_for(
            self.publisher.publish(FAULTS, fault.routing_key, fault), 2 * heartbeat()
        )

    async def idle(self, until: asyncio.Event) -> None:
        await self.session.watch(until, IDLE_CHECK)

    def proven(self) -> None:
        if not self.session.consumed:
            self.session.consuming()


class SessionLinks:
    """`Links` from `bus.session.SessionRunner`: connect to the nodes of `url` in turn, find (or,
    with the right to, declare) the topology, and publish as the connection's user."""

    def __init__(self, url: Urls, server: str, *, set_user_id: bool, health: Health) -> None:
        self.runner = SessionRunner(
            url, name=f"mrwbus-relay-{server}", prefetch=1, health=health, on_return_raises=True
        )
        self.set_user_id = set_user_id

    async def run(self, stop: asyncio.Event, body: LinkBody) -> None:
        async def session_body(session: Session) -> None:
            try:
                exchanges = await declare_exchanges(session.channel)
            except (ChannelAccessRefused, ChannelNotFoundEntity) as exc:
                reason = (
                    f"the topology is missing and this user may not declare it ({exc}): "
                    "run `mrwbus provision`, or start the service once"
                )
                log.warning("%s; retrying with back-off", reason)
                raise SessionLost(reason) from exc
            publisher = session.use_exchanges(exchanges)
            if not self.set_user_id:
                publisher.user_id = None
            await body(SessionLink(session, publisher))

        await self.runner.run(stop, session_body)
