"""A monitor-resource actor: one asyncio task and one mailbox per monitor.

Faults for one monitor are handled in arrival order; a monitor that waits on the broker never
stalls another. The actor decides and applies in one synchronous step (`ClusterState`), then
waits until the broker confirmed every command and event the decision produced.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from mrwbus.core.cluster import ClusterState
from mrwbus.core.recovery import Decision
from mrwbus.messages import Event, FaultNotification, RecoveryCommand, utc_now

log = logging.getLogger(__name__)

Publish = Callable[[Sequence[RecoveryCommand], Sequence[Event]], Awaitable[None]]

REMEMBERED_FAULTS = 10_000
"""Fault ids each actor remembers, so a redelivered fault never decides twice."""


@dataclass
class _Outcome:
    decision: Decision
    confirmed: bool = False


class MonitorActor:
    def __init__(self, monitor: str, cluster: ClusterState, publish: Publish) -> None:
        self.monitor = monitor
        self.cluster = cluster
        self.publish = publish
        self.mailbox: asyncio.Queue[tuple[FaultNotification, asyncio.Future[Decision]]] = (
            asyncio.Queue()
        )
        self._outcomes: OrderedDict[str, _Outcome] = OrderedDict()

    def submit(self, fault: FaultNotification) -> asyncio.Future[Decision]:
        """Queue a fault; the future resolves once everything it caused is confirmed."""
        done: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self.mailbox.put_nowait((fault, done))
        return done

    async def run(self) -> None:
        while True:
            fault, done = await self.mailbox.get()
            try:
                decision = await self.handle(fault)
            except Exception as exc:  # the caller decides: nack and let the broker redeliver
                if not done.done():
                    done.set_exception(exc)
            else:
                if not done.done():
                    done.set_result(decision)

    async def handle(self, fault: FaultNotification) -> Decision:
        outcome = self._outcomes.get(fault.id)
        if outcome is None:
            # A fault id seen before is never decided again; only its publishing is retried.
            outcome = _Outcome(self.cluster.handle_fault(self.monitor, fault, utc_now()))
            self._remember(fault.id, outcome)
        if not outcome.confirmed:
            await self.publish(outcome.decision.commands, outcome.decision.events)
            outcome.confirmed = True
        return outcome.decision

    def _remember(self, fault_id: str, outcome: _Outcome) -> None:
        self._outcomes[fault_id] = outcome
        if len(self._outcomes) > REMEMBERED_FAULTS:
            self._outcomes.popitem(last=False)
