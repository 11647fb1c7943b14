"""The Alertmanager forwarder: events from the durable queue `mrwbus.alerting` to Alertmanager.

It runs as a supervised task of the service (`Service.run`), with a broker session of its
own (`bus.session.SessionRunner`), so neither a slow Alertmanager nor a broker outage of one
touches the other. A batch of events is acknowledged only once Alertmanager accepted every
alert it fired or resolved: a restart of the service, of Alertmanager or of the broker loses
nothing, and at worst posts an alert twice (Alertmanager merges equal label sets). The queue
has one active consumer and this consumer handles one batch at a time, so alerts reach
Alertmanager in the order the service decided them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Sequence
from datetime import timedelta
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage, AbstractQueue

from mrwbus.alerting.catalogue import BINDINGS, Presentation, alert_changes
from mrwbus.alerting.client import AlertmanagerClient
from mrwbus.bus.health import Counters
from mrwbus.bus.session import Session, SessionRunner
from mrwbus.bus.topology import ALERTING, declare_alert_queue, declare_exchanges
from mrwbus.config.alerting import AlertingConfig
from mrwbus.errors import AlertRejected, ContractError
from mrwbus.messages import EventBatch, parse_message

log = logging.getLogger(__name__)

DRAIN_GRACE = 5.0
"""Seconds a stop waits for a post in hand; an unfinished one is redelivered later."""
RESTART_AFTER = 5.0
"""Seconds before a forwarder that failed (not the broker: a bug) starts again."""


class AlertForwarder:
    """Consumes `mrwbus.alerting` and posts the alerts its events fire and resolve."""

    def __init__(
        self,
        config: AlertingConfig,
        amqp_url: str | Sequence[str],
        counters: Counters,
        *,
        client: AlertmanagerClient | None = None,
        watch_interval: float = 1.0,
    ) -> None:
        if config.alertmanager_url is None:
            raise ValueError("alerting is off: no alertmanager_url")
        self.runner = SessionRunner(amqp_url, name="mrwbus-alerting", prefetch=1)
        self.health = self.runner.health
        self.counters = counters
        self.client = client or AlertmanagerClient(
            str(config.alertmanager_url),
            timeout=config.timeout_seconds,
            max_backoff=config.max_backoff_seconds,
            on_failure=self._failed,
        )
        self.presentation = Presentation(
            labels=dict(config.labels),
            hold=timedelta(seconds=config.hold_seconds),
            runbook_base=config.runbook_base,
            generator_url=str(config.generator_url) if config.generator_url else None,
        )
        self.watch_interval = watch_interval
        self.restarts = 0
        """Times the forwarder failed on something other than the broker and was restarted."""

    def health_json(self, now: float) -> dict[str, Any]:
        """What `/healthz` shows under `alerting`."""
        return {
            "url": self.client.url,
            "connected": self.health.connected,
            "consuming": self.health.consuming,
            "last_error": self.health.last_error,
            "stuck": self.health.stuck(now),
            "posted": self.counters.alerts_posted,
            "failures": self.counters.alertmanager_failures,
            "restarts": self.restarts,
        }

    async def run(self, stop: asyncio.Event) -> None:
        """Forward until `stop`; a failure that is not the broker's is logged and the
        forwarder starts again after a back-off (the service goes on meanwhile)."""
        try:
            while not stop.is_set():
                try:
                    await self.runner.run(stop, lambda session: self._session(session, stop))
                except Exception as exc:
                    self.restarts += 1
                    self.health.last_error = str(exc) or type(exc).__name__
                    log.exception("the Alertmanager forwarder failed; starting it again")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), RESTART_AFTER)
        finally:
            await self.client.close()

    async def _session(self, session: Session, stop: asyncio.Event) -> None:
        exchanges = await declare_exchanges(session.channel)
        session.use_exchanges(exchanges)
        queue = await declare_alerting(session.channel, exchanges)
        await session.consume(queue, self._on_batch)
        session.consuming()
        self.health.role = "active"
        log.info("forwarding alerts from %s to %s", ALERTING, self.client.url)
        await session.watch(stop, self.watch_interval)
        await session.drain(DRAIN_GRACE)

    async def _on_batch(self, message: AbstractIncomingMessage) -> None:
        publisher = self.runner.current_publisher()
        try:
            batch = parse_message(EventBatch, message.body)
        except ContractError as exc:
            await publisher.dead_letter(message, str(exc))
            await message.ack()
            return
        changes = alert_changes(batch.events, self.presentation)
        try:
            await self.client.post(changes)
        except AlertRejected as exc:
            self.health.last_error = str(exc)
            log.error("events %s dead-lettered: %s", batch.id, exc)
            await publisher.dead_letter(message, str(exc))
            await message.ack()
            return
        self.counters.alerts_posted += len(changes)
        await message.ack()

    def _failed(self, exc: BaseException) -> None:
        self.counters.alertmanager_failures += 1
        self.health.last_error = f"Alertmanager: {exc}" if str(exc) else type(exc).__name__


async def declare_alerting(
    channel: AbstractChannel, exchanges: dict[str, AbstractExchange]
) -> AbstractQueue:
    """The forwarder's queue, bound to the events that fire or resolve an alert."""
    return await declare_alert_queue(channel, exchanges, BINDINGS)


def forwarder_for(
    config: AlertingConfig, amqp_url: str | Sequence[str], counters: Counters
) -> AlertForwarder | None:
    """The service's forwarder, or None while `alerting.alertmanager_url` is not set."""
    return AlertForwarder(config, amqp_url, counters) if config.enabled else None


async def serve_beside(
    forwarder: AlertForwarder | None, serving: Awaitable[None], stop: asyncio.Event
) -> None:
    """Run `serving` (the service's sessions) with the forwarder beside it as a task that
    restarts itself on failure; the forwarder stops with `stop`, or when `serving` fails."""
    if forwarder is None:
        await serving
        return
    forwarding = asyncio.create_task(forwarder.run(stop), name="alerting")
    try:
        await serving
    finally:
        if not stop.is_set():
            forwarding.cancel()
        await asyncio.gather(forwarding, return_exceptions=True)
