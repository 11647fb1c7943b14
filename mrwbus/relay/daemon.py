"""The relay daemon: sources -> debounce -> spool -> delivery, for one server.

Every observation goes through `observe`: a level is debounced, and a change that held becomes
a fault (or a recovery notice); a notice becomes one at once. Each fault is written to the
spool before anything is sent, with an id made from what it reports (server, source, device,
state and the time of the change), so a fault sent again after a crash or a restart keeps its
id. The delivery then sends the spool in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mrwbus.bus.connection import Urls
from mrwbus.config.relay import RelaySettings
from mrwbus.messages import Category, FaultNotification, derived_id
from mrwbus.relay.debounce import Debouncer, Transition
from mrwbus.relay.delivery import Delivery, LinkFactory, PublisherLink, broker_urls
from mrwbus.relay.sources import Level, Notice, Observation, Source, build_sources
from mrwbus.relay.spool import Spool, SpoolState, replay

log = logging.getLogger(__name__)

SOURCE_RESTART = 5.0
"""Seconds before a source that failed (netlink socket error, unreadable log) starts again."""


def spool_path(settings: RelaySettings) -> Path:
    return Path(settings.spool_dir) / f"{settings.server}.spool"


def fault_id(server: str, source: str, device: str, state: str, at: float, unique: str = "") -> str:
    """The same fault always gets the same id, whenever and however often it is sent."""
    when = datetime.fromtimestamp(at, UTC).isoformat()
    return derived_id("relay", server, source, device, state, when, unique)


@dataclass
class RelayCounters:
    seen: Counter[str] = field(default_factory=Counter)
    """Faults and recovery notices made, per source."""
    spooled: int = 0
    source_failures: Counter[str] = field(default_factory=Counter)


class Relay:
    def __init__(
        self,
        settings: RelaySettings,
        url: Urls,
        *,
        open_link: LinkFactory | None = None,
        sources: list[Source] | None = None,
    ) -> None:
        self.settings = settings
        self.sources = build_sources(settings) if sources is None else sources
        self.spool = Spool(spool_path(settings))
        # Levels reported before a restart stand: a link still down is not announced again.
        self.debouncer = Debouncer(settings.debounce.total_seconds(), reported=self.spool.levels)
        self.counters = RelayCounters()
        self.running: dict[str, bool] = {source.name: False for source in self.sources}
        self._categories: dict[str, Category] = {}
        self._changed = asyncio.Event()

        urls = broker_urls(url)

        async def publisher_link() -> PublisherLink:
            # A node that cannot be reached sends the next attempt to the next node.
            urls.append(urls.pop(0))
            return await PublisherLink.open(
                urls[-1], settings.server, set_user_id=settings.publish_user_id
            )

        self.delivery = Delivery(self.spool, open_link or publisher_link)

    # --- observations -> faults -------------------------------------------------------------

    def observe(self, observation: Observation) -> None:
        if isinstance(observation, Level):
            self._categories[observation.key] = observation.category
            self.debouncer.observe(
                observation.key, observation.healthy, observation.at, observation.detail
            )
            self._changed.set()
        else:
            self._notice(observation)

    def _notice(self, notice: Notice) -> None:
        fault = FaultNotification(
            id=fault_id(
                self.settings.server,
                notice.source,
                notice.device,
                notice.state,
                notice.at,
                notice.unique,
            ),
            server=self.settings.server,
            category=notice.category,
            device=notice.device,
            message=notice.message[:4096],
            occurred_at=datetime.fromtimestamp(notice.at, UTC),
            state=notice.state,
        )
        self._spool(fault, notice.source, None)

    def _transition(self, transition: Transition) -> None:
        source, _, device = transition.key.partition("/")
        state = "recovered" if transition.healthy else "error"
        word = "up again" if transition.healthy else "down"
        fault = FaultNotification(
            id=fault_id(self.settings.server, source, device, state, transition.since),
            server=self.settings.server,
            category=self._categories[transition.key],
            device=device,
            message=f"{device} {word}: {transition.detail}"[:4096],
            occurred_at=datetime.fromtimestamp(transition.since, UTC),
            state=state,
        )
        self._spool(fault, source, (transition.key, transition.healthy))

    def _spool(self, fault: FaultNotification, source: str, level: tuple[str, bool] | None) -> None:
        self.counters.seen[source] += 1
        if self.spool.add(fault, level):
            self.counters.spooled += 1
            log.warning(
                "%s %s on %s (%s): %s",
                fault.category.value,
                fault.state,
                fault.device,
                source,
                fault.message,
            )
            self.delivery.wake()

    async def _debounce(self) -> None:
        while True:
            for transition in self.debouncer.due(time.time()):
                self._transition(transition)
            due = self.debouncer.next_due()
            timeout = None if due is None else max(0.0, due - time.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
            self._changed.clear()

    async def _watch(self, source: Source) -> None:
        while True:
            self.running[source.name] = True
            try:
                await source.run(self.observe)
                log.error("source %s stopped; starting it again", source.name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error(
                    "source %s failed (%s: %s); starting it again in %gs",
                    source.name,
                    type(exc).__name__,
                    exc,
                    SOURCE_RESTART,
                )
            self.running[source.name] = False
            self.counters.source_failures[source.name] += 1
            await asyncio.sleep(SOURCE_RESTART)

    # --- lifecycle ----------------------------------------------------------------------------

    def describe(self) -> str:
        watched = "; ".join(f"{source.name}: {source.describe()}" for source in self.sources)
        return (
            f"relay of {self.settings.server}: {watched or 'no sources configured'}; "
            f"debounce {self.settings.debounce.total_seconds():g}s; spool {self.spool.path} "
            f"({len(self.spool.pending)} fault(s) waiting)"
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Watch and deliver until `stop` is set."""
        log.info(self.describe())
        tasks = [asyncio.create_task(self._watch(source)) for source in self.sources]
        tasks.append(asyncio.create_task(self._debounce()))
        tasks.append(asyncio.create_task(self.delivery.run()))
        if self.spool.pending:
            self.delivery.wake()
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.spool.close()


async def snapshot(settings: RelaySettings) -> list[str]:
    """What every source sees now, and what the spool holds, one line each (`--once`)."""
    lines = [f"relay of {settings.server}, debounce {settings.debounce.total_seconds():g}s"]
    sources = build_sources(settings)
    if not sources:
        lines.append("no sources configured for this server")
    for source in sources:
        try:
            lines += await source.snapshot()
        except Exception as exc:
            lines.append(f"{source.name}: cannot look ({type(exc).__name__}: {exc})")
    path = spool_path(settings)
    state = replay(path.read_text().splitlines()) if path.exists() else SpoolState()
    lines.append(f"spool {path}: {len(state.pending)} fault(s) waiting for the broker")
    lines += [
        f"  {fault.occurred_at.isoformat()} {fault.routing_key} {fault.device} {fault.state}"
        for fault in state.pending.values()
    ]
    return lines
