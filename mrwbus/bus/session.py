"""One runner for broker sessions, used by every long-running client: the service, the agent
and the relay (`relay.link`). It is the one place that retries with back-off (one-shot verbs
try each node once, `bus.connection.connect`).

A session is one connection and one channel with publisher confirms. `SessionRunner.run`
connects (tenacity back-off, trying each of several URLs in turn), hands a `Session` to the
caller's body, and when the session breaks (broker restart, channel closed, consumer cancelled
by the broker) records an outage and starts a new one. The body declares through
`bus.topology`, consumes with `Session.consume`, marks itself consuming, and waits in
`Session.watch`; on stop it calls `Session.drain`, which takes no new message and lets the
ones in hand finish (they ack) before the connection closes.

The runner does not trust aio-pika's robust connection with any of this: after a broker
restart the state must be rebuilt (see docs/architecture.md). Consumers are watched through
aiormq's public `on_consumer_cancel_callbacks` and aio-pika's `close_callbacks`: a consumer the
broker cancels (queue deleted, quorum leader moved) ends the session at once.

Silence is watched too: every session asks the broker a trivial question (`basic.qos` on a
channel of its own) every half heartbeat, and a broker that has not answered within a
heartbeat ends the session, so a replica behind a dead switch stops deciding within seconds
(aiormq alone gives up only after three heartbeats and more).

Only connection and channel failures travel the reconnect path (`SESSION_ERRORS`). Anything
else a body raises (a bug, `JournalFailed`) ends the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential
from yarl import URL

from mrwbus.bus.connection import (
    CONNECT_ERRORS,
    CONNECTION_ERRORS,
    connection_closed,
    connection_user,
    node_of,
    open_connection,
    redact,
    url_list,
)
from mrwbus.bus.health import Health
from mrwbus.bus.publisher import Publisher
from mrwbus.config.settings import heartbeat
from mrwbus.errors import NotConnected

log = logging.getLogger(__name__)

Handler = Callable[[AbstractIncomingMessage], Awaitable[None]]


CANCEL_WAIT, CLOSE_WAIT = 0.5, 2.0
"""Seconds a stop waits for the broker to confirm its consumers' cancels, and the close."""


class SessionLost(ConnectionError):
    """The broker closed the channel or connection, or cancelled a consumer of this session."""


SESSION_ERRORS: tuple[type[BaseException], ...] = (
    *CONNECTION_ERRORS,
    aiormq.exceptions.AMQPChannelError,
    aiormq.exceptions.DeliveryError,
    aiormq.exceptions.PublishError,
)
"""What ends a session and starts a new one: the broker went away, closed a channel, refused
or returned a message."""


_SESSION_OR_RUNTIME: tuple[type[BaseException], ...] = (*SESSION_ERRORS, RuntimeError)
"""aiormq says that a channel cannot be opened on a connection it has closed with a bare
`RuntimeError`; `_as_lost` decides on the connection's public state, never on that error alone."""


class _EndedEarly(Exception):
    """A session ended before it consumed, or its body ended it: retried with back-off, so a
    broker that accepts connections but fails sessions is not hammered."""


_RETRIED: tuple[type[BaseException], ...] = (*CONNECT_ERRORS, *SESSION_ERRORS, _EndedEarly)


def backoff() -> wait_exponential:
    """The wait between failed attempts: 0.2 s doubling up to 5 s."""
    return wait_exponential(multiplier=0.2, max=5)


class Session:
    """One live connection and channel, as a session body sees it."""

    def __init__(
        self,
        connection: AbstractConnection,
        channel: AbstractChannel,
        runner: SessionRunner,
        url: str,
    ) -> None:
        self.connection = connection
        self.url = url
        """The broker URL this session is connected to (with its password: `redact` it)."""
        self.channel = channel
        self.publisher = Publisher(channel, {}, user_id=connection_user(channel))
        """Exchanges are filled in by the body once declared (`use_exchanges`)."""
        self._runner = runner
        self._tags: dict[str, AbstractQueue] = {}
        self._inflight: set[asyncio.Task[Any]] = set()
        self._lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.consumed = False
        self._prober: asyncio.Task[None] | None = None

    async def _probe(self, silence: float) -> None:
        """End the session once the broker leaves a question unanswered for `silence` s."""
        channel = await self.connection.channel()
        underlay = await channel.get_underlay_channel()
        while not self._lost.done():
            try:
                await asyncio.wait_for(underlay.basic_qos(prefetch_count=0), silence)
            except TimeoutError:
                # Logged here, at once: the session's end may wait for what was in flight.
                log.warning(
                    "%s: the broker %s has not answered for %g s; deciding nothing more",
                    self._runner.name,
                    node_of(self.url),
                    silence,
                )
                self.end(SessionLost(f"the broker has not answered for {silence:g} s"))
                return
            except Exception as exc:
                self.end(SessionLost(f"the broker session broke: {exc or type(exc).__name__}"))
                return
            await asyncio.sleep(silence / 2)

    def _stop_probe(self) -> None:
        if self._prober is not None:
            self._prober.cancel()

    @property
    def silent(self) -> bool:
        """True once the session ended because the broker went silent."""
        return self._prober is not None and self._prober.done() and self._lost.done()

    async def _watch_broker(self, silence: float) -> None:
        def closed(_sender: object, exc: BaseException | None = None) -> None:
            self.end(SessionLost(f"the channel or connection closed: {exc or 'no reason'}"))

        self.channel.close_callbacks.add(closed)
        self.connection.close_callbacks.add(closed)
        underlay = await self.channel.get_underlay_channel()
        underlay.on_consumer_cancel_callbacks.add(self._on_cancel)
        self._prober = asyncio.create_task(self._probe(silence), name="broker-probe")

    def _on_cancel(self, frame: aiormq.spec.Basic.Cancel) -> None:
        queue = self._tags.get(frame.consumer_tag or "")
        if queue is not None:
            self.end(SessionLost(f"the broker cancelled the consumer of {queue.name}"))

    def end(self, exc: BaseException) -> None:
        """End the session now: `watch` raises `exc` (the broker's doing, or the body's own:
        a journal that failed)."""
        if not self._lost.done():
            self._lost.set_exception(exc)
            self._lost.exception()  # retrieved here: `watch` raises it when it looks

    def use_exchanges(self, exchanges: dict[str, Any]) -> Publisher:
        self.publisher.exchanges = exchanges
        self._runner.publisher = self.publisher
        return self.publisher

    async def consume(self, queue: AbstractQueue, handler: Handler) -> str:
        """Consume `queue`; a message whose handler fails is never left unacknowledged."""

        async def guarded(message: AbstractIncomingMessage) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._inflight.add(task)
            health = self._runner.health
            health.began(queue.name, id(task), time.monotonic())
            try:
                await handler(message)
            except SESSION_ERRORS as exc:
                # The session is gone; the broker redelivers the unacknowledged message.
                log.warning(
                    "message on %s left to redelivery by a lost session: %s", queue.name, exc
                )
            except Exception:
                # Not the broker (a bug, a journal that cannot be written): hand it back; the
                # queue's delivery limit dead-letters a message that keeps failing.
                log.exception("could not handle a message from %s; handed back", queue.name)
                with contextlib.suppress(Exception):
                    await message.nack(requeue=True)
            finally:
                self._inflight.discard(task)
                health.ended(queue.name, id(task), time.monotonic())

        tag = await queue.consume(guarded)
        self._tags[tag] = queue
        return tag

    def consuming(self) -> None:
        """Say the session is up and consuming: health, `runner.ready`."""
        self.consumed = True
        self._runner.health.consuming = True
        self._runner.ready.set()

    async def watch(
        self,
        stop: asyncio.Event,
        interval: float,
        tick: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Return once `stop` is set; raise `SessionLost` as soon as the broker ends the session;
        call `tick` every `interval` seconds meanwhile."""
        stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        lost: asyncio.Future[Any] = self._lost
        try:
            while not stop.is_set():
                await asyncio.wait({stopping, lost}, timeout=interval)
                if self._lost.done():
                    self._lost.result()
                if self.channel.is_closed or self.connection.is_closed:
                    raise SessionLost("the channel or connection closed")
                if tick is not None and not stop.is_set():
                    await tick()
        finally:
            stopping.cancel()

    async def drain(self, grace: float | None) -> None:
        """Take no new message, let those in hand finish (they ack), within `grace` seconds
        (None: however long they take); the rest are cancelled and redelivered later."""
        self._runner.health.consuming = False
        self._runner.ready.clear()
        cancels = [queue.cancel(tag) for tag, queue in self._tags.items()]
        self._tags.clear()
        # A broker that stopped answering must not hold the stop: the close ends them anyway.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*cancels, return_exceptions=True), CANCEL_WAIT)
        if not self._inflight:
            return
        log.info("finishing %d message(s) in hand before stopping", len(self._inflight))
        _, pending = await asyncio.wait(set(self._inflight), timeout=grace)
        for task in pending:
            log.warning("stopping with a message unfinished; the broker redelivers it")
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


Body = Callable[[Session], Awaitable[None]]


class SessionRunner:
    """Runs sessions against one broker (or the nodes of a cluster) until told to stop."""

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        name: str,
        prefetch: int,
        health: Health | None = None,
        on_return_raises: bool = False,
    ) -> None:
        self.urls = url_list(urls, shuffle=True)
        self.name = name
        self.prefetch = prefetch
        self.on_return_raises = on_return_raises
        self.health = health if health is not None else Health()
        self.ready = asyncio.Event()
        """Set while a session consumes."""
        self.publisher: Publisher | None = None
        self._attempt = 0

    def current_publisher(self) -> Publisher:
        if self.publisher is None:
            raise NotConnected("not connected to the broker")
        return self.publisher

    async def run(self, stop: asyncio.Event, body: Body) -> None:
        """Run `body` in one session after another until `stop` is set.

        A session that consumed and was then lost is renewed at once; connecting, or a
        session that ends before it consumed, is retried with `backoff()`."""

        async def sleep(seconds: float) -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            if error is not None and not isinstance(error, _EndedEarly):
                self.health.last_error = str(error) or type(error).__name__

        while not stop.is_set():
            retrying = AsyncRetrying(
                retry=retry_if_exception_type(_RETRIED),
                wait=backoff(),
                stop=lambda _state: stop.is_set(),
                sleep=sleep,
                before_sleep=before_sleep,
                reraise=True,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        await self._one(stop, body)
            except _RETRIED:
                if not stop.is_set():
                    raise  # pragma: no cover - tenacity stops only on `stop`

    async def _one(self, stop: asyncio.Event, body: Body) -> None:
        url = self.urls[self._attempt % len(self.urls)]
        self._attempt += 1
        silence = float(URL(url).query.get("heartbeat") or heartbeat())
        try:
            connection = await _unless_stopped(open_connection(url, self.name), stop)
            if connection is None:
                return  # told to stop while connecting
        except CONNECT_ERRORS as exc:
            self.health.last_error = str(exc) or type(exc).__name__
            log.warning("broker %s unreachable (%s); retrying", redact(url), self.health.last_error)
            raise
        session: Session | None = None
        try:
            channel = await connection.channel(
                publisher_confirms=True, on_return_raises=self.on_return_raises
            )
            await channel.set_qos(prefetch_count=self.prefetch)
            session = Session(connection, channel, self, url)
            await session._watch_broker(silence)
            self.health.connected = True
            self.health.node = node_of(url)
            await body(session)
        except _SESSION_OR_RUNTIME as exc:
            lost = _as_lost(exc, connection)
            self._lost(lost)
            if session is None or not session.consumed:
                if lost is exc:
                    raise
                raise lost from exc
            return
        finally:
            self.publisher = None
            self.ready.clear()
            self.health.consuming = False
            self.health.connected = False
            self.health.node = None
            if session is not None:
                session._stop_probe()
            with contextlib.suppress(Exception):
                # A silent broker never answers the close: do not wait long for it.
                await asyncio.wait_for(connection.close(), min(CLOSE_WAIT, silence))
        if not stop.is_set():
            # The body ended its session itself (it stepped down): not at once again.
            raise _EndedEarly("the session ended")

    def _lost(self, exc: BaseException) -> None:
        self.health.outages += 1
        self.health.last_error = str(exc) or type(exc).__name__
        log.warning(
            "%s lost the broker session (%s); reconnecting", self.name, self.health.last_error
        )


def _as_lost(exc: BaseException, connection: AbstractConnection) -> BaseException:
    """A session error as it is; any other error (aiormq's bare RuntimeError when a channel is
    opened on a connection it closed, as in a node's shutdown) as `SessionLost` when the
    connection is closed by its public state, else raised again: a bug."""
    if isinstance(exc, SESSION_ERRORS):
        return exc
    if connection_closed(connection):
        return SessionLost(f"the connection closed: {exc}")
    raise exc


async def _unless_stopped(
    connecting: Awaitable[AbstractConnection], stop: asyncio.Event
) -> AbstractConnection | None:
    """The connection, or None if `stop` is set first (a connect may take its whole timeout)."""
    attempt = asyncio.ensure_future(connecting)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({attempt, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if attempt.done():
        return attempt.result()
    attempt.cancel()
    with contextlib.suppress(asyncio.CancelledError, *CONNECT_ERRORS):
        await attempt
    return None
