"""A monitor-resource actor: one asyncio task and one mailbox per monitor.

Faults for one monitor are handled in arrival order; a monitor that waits on the broker never
stalls another. For each fault the actor decides and applies in one synchronous step
(`ClusterState`), fixes the decision's place in the journal in that same step, waits until the
journal entry is confirmed, then publishes every command and event and waits for their confirms.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from mrwbus.core.cluster import ClusterState
from mrwbus.core.decision import CONFIRMED, Decision
from mrwbus.errors import JournalFailed
from mrwbus.messages import FaultNotification, utc_now
from mrwbus.outbox import Outbox

REMEMBERED_FAULTS = 10_000
"""Fault ids each actor remembers, so a redelivered fault never decides twice."""


class MonitorActor:
    def __init__(
        self,
        monitor: str,
        cluster: ClusterState,
        outbox: Outbox,
        decided: OrderedDict[str, Decision] | None = None,
    ) -> None:
        self.monitor = monitor
        self.cluster = cluster
        self.outbox = outbox
        self.mailbox: asyncio.Queue[tuple[FaultNotification, asyncio.Future[Decision]]] = (
            asyncio.Queue()
        )
        self._decided: OrderedDict[str, Decision] = (
            decided if decided is not None else OrderedDict()
        )

    def submit(self, fault: FaultNotification) -> asyncio.Future[Decision]:
        """Queue a fault; the future resolves once everything it caused is confirmed."""
        done: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self.mailbox.put_nowait((fault, done))
        return done

    async def run(self) -> None:
        try:
            while True:
                fault, done = await self.mailbox.get()
                try:
                    decision = await self.handle(fault)
                except asyncio.CancelledError:
                    if not done.done():
                        done.set_exception(ConnectionError("the monitor actor stopped"))
                    raise
                except Exception as exc:  # the caller decides: nack and let the broker redeliver
                    if not done.done():
                        done.set_exception(exc)
                else:
                    if not done.done():
                        done.set_result(decision)
        finally:
            # Stopped (the session ended): whoever waits on a queued fault must not wait forever.
            while not self.mailbox.empty():
                _, done = self.mailbox.get_nowait()
                if not done.done():
                    done.set_exception(ConnectionError("the monitor actor stopped"))

    async def handle(self, fault: FaultNotification) -> Decision:
        if self.outbox.journal.failed:
            # The state in memory is ahead of the journal: decide nothing until it is rebuilt.
            raise JournalFailed("the journal failed; the state is being rebuilt")
        decision = self._decided.get(fault.id)
        if decision is None:
            # A fault id decided before is never decided again; only its publishing is retried.
            decision = self.cluster.handle_fault(self.monitor, fault, utc_now())
            self._remember(fault.id, decision)
            try:
                await self.outbox.journal_fault(self.cluster, self.monitor, fault.id, decision)
            except BaseException:
                # Not journaled, so never to be published: the rebuilt state decides afresh.
                self._decided.pop(fault.id, None)
                raise
        if not decision.confirmed:
            decision = await self.outbox.send_fault(self.monitor, fault.id, decision)
            if fault.id in self._decided:
                # Only the fact is kept, as in the journal: the messages are out, and a storm
                # of remembered events and states grew the service by hundreds of megabytes.
                self._decided[fault.id] = CONFIRMED
        return decision

    def _remember(self, fault_id: str, decision: Decision) -> None:
        self._decided[fault_id] = decision
        if len(self._decided) > REMEMBERED_FAULTS:
            self._decided.popitem(last=False)


def monitor_actors(
    cluster: ClusterState, outbox: Outbox, decided: dict[str, OrderedDict[str, Decision]]
) -> dict[str, MonitorActor]:
    """One actor per configured monitor, each with the faults it decided before (the journal)."""
    return {
        name: MonitorActor(name, cluster, outbox, decided.get(name))
        for name in cluster.config.monitors
    }
