"""The relay daemon: sources -> debounce -> spool -> delivery, for one server.

Every observation goes through `observe`: a level is debounced, and a change that held becomes
a fault (or a recovery notice); a notice becomes one at once. Each fault is written to the
spool before anything is sent, with an id made from what it reports (server, source, device,
state and the time of the change), so a fault sent again after a crash or a restart keeps its
id. The delivery then sends the spool in order, over the shared broker session runner.

Every task (each source, the debounce, the delivery) runs under `supervise.Supervision`: a
failure is logged, counted and shown, and the task starts again; a stop ends them all within
`STOP_WITHIN` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mrwbus.bus.connection import Urls
from mrwbus.bus.health import Health
from mrwbus.bus.supervise import SOURCE_RESTART, Supervision, fixed
from mrwbus.errors import RelayError
from mrwbus.messages import Category, FaultNotification, derived_id
from mrwbus.relay.debounce import Debouncer, Transition
from mrwbus.relay.delivery import Delivery, Links, SessionLinks
from mrwbus.relay.registry import RelaySettings
from mrwbus.relay.sources import Level, Notice, Observation, Source
from mrwbus.relay.spool import Spool, SpoolState, replay

log = logging.getLogger(__name__)

STOP_WITHIN = 4.0
"""Seconds a stop waits for the relay's tasks to end after cancelling them."""


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


class Relay:
    def __init__(
        self,
        settings: RelaySettings,
        url: Urls,
        *,
        links: Links | None = None,
        sources: list[Source] | None = None,
    ) -> None:
        self.settings = settings
        self.sources = settings.build_sources() if sources is None else sources
        self.spool = Spool(spool_path(settings))
        # Levels reported before a restart stand: a link still down is not announced again.
        self.debouncer = Debouncer(settings.debounce.total_seconds(), reported=self.spool.levels)
        self.counters = RelayCounters()
        self.health = Health()
        """One for the whole relay: the session runner's, the delivery's and the tasks'."""
        self.supervision = Supervision(self.health)
        self._categories: dict[str, Category] = {}
        self._changed = asyncio.Event()
        if links is None:
            links = SessionLinks(
                url, settings.server, set_user_id=settings.publish_user_id, health=self.health
            )
        self.delivery = Delivery(self.spool, links, self.health)

    @property
    def running(self) -> dict[str, bool]:
        """Source name -> running now."""
        up = self.supervision.up
        return {source.name: up.get(source.name, False) for source in self.sources}

    @property
    def source_failures(self) -> dict[str, int]:
        names = {source.name for source in self.sources}
        return {k: v for k, v in self.supervision.failures.items() if k in names}

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

    def _watch(self, source: Source) -> Callable[[], Awaitable[None]]:
        return lambda: source.run(self.observe)

    # --- lifecycle ----------------------------------------------------------------------------

    def describe(self) -> str:
        watched = "; ".join(f"{source.name}: {source.describe()}" for source in self.sources)
        return (
            f"relay of {self.settings.server}: {watched or 'no sources configured'}; "
            f"debounce {self.settings.debounce.total_seconds():g}s; spool {self.spool.path} "
            f"({len(self.spool.pending)} fault(s) waiting)"
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Watch and deliver until `stop` is set; every task is supervised, and all of them end
        within `STOP_WITHIN` seconds of the stop. Raises `RelayError` (the process exits
        non-zero) only if a supervisor itself ends, which is a bug."""
        log.info(self.describe())
        supervise = self.supervision.supervise
        tasks = {
            asyncio.create_task(
                supervise(source.name, self._watch(source), stop, fixed(SOURCE_RESTART)),
                name=f"relay-{source.name}",
            )
            for source in self.sources
        }
        tasks.add(asyncio.create_task(supervise("debounce", self._debounce, stop)))
        tasks.add(asyncio.create_task(supervise("delivery", lambda: self.delivery.run(stop), stop)))
        if self.spool.pending:
            self.delivery.wake()
        stopping = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({stopping, *tasks}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            await self._end(tasks)
        ended = [task for task in done if task is not stopping]
        if ended and not stop.is_set():
            raise RelayError(f"a relay task ended: {ended[0].get_name()}")

    async def _end(self, tasks: set[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        _, late = await asyncio.wait(tasks, timeout=STOP_WITHIN)
        for task in late:
            log.error("relay task %s did not end within %gs", task.get_name(), STOP_WITHIN)
        for task in tasks - late:
            if not task.cancelled() and task.exception() is not None:
                log.error("relay task %s failed", task.get_name(), exc_info=task.exception())
        self.spool.close()


async def snapshot(settings: RelaySettings) -> list[str]:
    """What every source sees now, and what the spool holds, one line each (`--once`)."""
    lines = [f"relay of {settings.server}, debounce {settings.debounce.total_seconds():g}s"]
    sources = settings.build_sources()
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
