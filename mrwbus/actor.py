"""A monitor-resource actor: one asyncio task and one mailbox per monitor.

Faults for one monitor are handled in arrival order; a monitor that waits on the broker never
stalls another. For each fault the actor decides and applies in one synchronous step
(`ClusterState`), fixes the decision's place in the journal in that same step, waits until the
journal entry is confirmed, then publishes every command and event and waits for their confirms.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

from mrwbus.core.cluster import ClusterState
from mrwbus.core.records import Published
from mrwbus.messages import Event, FaultNotification, RecoveryCommand, utc_now
from mrwbus.persistence import StateJournal

log = logging.getLogger(__name__)

Publish = Callable[[Sequence[RecoveryCommand], Sequence[Event]], Awaitable[None]]

REMEMBERED_FAULTS = 10_000
"""Fault ids each actor remembers, so a redelivered fault never decides twice."""


class MonitorActor:
    def __init__(
        self,
        monitor: str,
        cluster: ClusterState,
        publish: Publish,
        journal: StateJournal,
        decided: OrderedDict[str, Published] | None = None,
    ) -> None:
        self.monitor = monitor
        self.cluster = cluster
        self.publish = publish
        self.journal = journal
        self.mailbox: asyncio.Queue[tuple[FaultNotification, asyncio.Future[Published]]] = (
            asyncio.Queue()
        )
        self._decided: OrderedDict[str, Published] = (
            decided if decided is not None else OrderedDict()
        )

    def submit(self, fault: FaultNotification) -> asyncio.Future[Published]:
        """Queue a fault; the future resolves once everything it caused is confirmed."""
        done: asyncio.Future[Published] = asyncio.get_running_loop().create_future()
        self.mailbox.put_nowait((fault, done))
        return done

    async def run(self) -> None:
        try:
            while True:
                fault, done = await self.mailbox.get()
                try:
                    published = await self.handle(fault)
                except asyncio.CancelledError:
                    if not done.done():
                        done.set_exception(ConnectionError("the monitor actor stopped"))
                    raise
                except Exception as exc:  # the caller decides: nack and let the broker redeliver
                    if not done.done():
                        done.set_exception(exc)
                else:
                    if not done.done():
                        done.set_result(published)
        finally:
            # Stopped (the session ended): whoever waits on a queued fault must not wait forever.
            while not self.mailbox.empty():
                _, done = self.mailbox.get_nowait()
                if not done.done():
                    done.set_exception(ConnectionError("the monitor actor stopped"))

    async def handle(self, fault: FaultNotification) -> Published:
        if self.journal.failed:
            # The state in memory is ahead of the journal: decide nothing until it is rebuilt.
            raise ConnectionError("the journal failed; the state is being rebuilt")
        published = self._decided.get(fault.id)
        if published is None:
            # A fault id decided before is never decided again; only its publishing is retried.
            decision = self.cluster.handle_fault(self.monitor, fault, utc_now())
            published = Published(list(decision.commands), list(decision.events))
            self._remember(fault.id, published)
            shared = bool(decision.moves or decision.failovers)
            try:
                await self.journal.decision(
                    self.cluster, self.monitor, fault.id, published, shared=shared
                )
            except BaseException:
                # Not journaled, so never to be published: the rebuilt state decides afresh.
                self._decided.pop(fault.id, None)
                raise
        if not published.confirmed:
            await self.publish(published.commands, published.events)
            published.confirmed = True
            # Not awaited: losing this only means a redelivery republishes the same ids.
            asyncio.ensure_future(self.journal.confirmed(self.monitor, fault.id)).add_done_callback(
                _quiet
            )
        return published

    def _remember(self, fault_id: str, published: Published) -> None:
        self._decided[fault_id] = published
        if len(self._decided) > REMEMBERED_FAULTS:
            self._decided.popitem(last=False)


def _quiet(future: asyncio.Future[int]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.debug("confirmation record not journaled: %s", future.exception())
