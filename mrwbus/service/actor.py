"""A monitor-resource actor: one turn at a time per monitor, in arrival order.

Faults for one monitor are handled in the order they arrived; a monitor that waits on the
broker never stalls another. A fault takes its turn synchronously when it is consumed (the
actor remembers the last turn taken), and runs in the task that consumed it as soon as the turn
before it ended: no task, mailbox or future hop per fault (those were a tenth of a fault's cost
in a storm). For each fault the actor decides and applies in one synchronous step
(`ClusterState`), fixes the decision's place in the journal in that same step, waits until the
journal entry is confirmed, then publishes every command and event and waits for their confirms.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from mrwbus.core.cluster import ClusterState
from mrwbus.core.decision import CONFIRMED, Decision
from mrwbus.core.history import fault_decision
from mrwbus.errors import JournalFailed
from mrwbus.messages import FaultNotification, utc_now
from mrwbus.service.outbox import Outbox

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
        self._last_turn: asyncio.Future[None] | None = None
        """Ends when the newest fault submitted is done; the next one waits for it."""
        self._decided: OrderedDict[str, Decision] = (
            decided if decided is not None else OrderedDict()
        )

    def take_turn(self) -> Turn:
        """The next turn on this monitor, taken now (in the caller's step, so in arrival order)."""
        turn = Turn(self._last_turn, asyncio.get_running_loop().create_future())
        self._last_turn = turn.mine
        return turn

    async def run_turn(self, turn: Turn, fault: FaultNotification) -> Decision:
        """Wait for the turn before, then handle the fault; the next turn starts when this
        one ends, however it ends (a fault never handled still waits for the one before)."""
        try:
            if turn.before is not None and not turn.before.done():
                await asyncio.wait((turn.before,))
            return await self.handle(fault)
        finally:
            turn.end()
            if self._last_turn is turn.mine and turn.mine.done():
                self._last_turn = None  # nothing waits: keep no finished future

    async def handle(self, fault: FaultNotification) -> Decision:
        if self.outbox.journal.failed:
            # The state in memory is ahead of the journal: decide nothing until it is rebuilt.
            raise JournalFailed("the journal failed; the state is being rebuilt")
        decision = self._decided.get(fault.id)
        if decision is None:
            # A fault id decided before is never decided again; only its publishing is retried.
            now = utc_now()
            decision = self.cluster.handle_fault(self.monitor, fault, now)
            self._remember(fault.id, decision)
            record = fault_decision(self.monitor, fault, decision, now)
            try:
                await self.outbox.journal_fault(
                    self.cluster, self.monitor, fault.id, decision, history=(record,)
                )
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


class Turn:
    """A fault's place in one monitor's line: the turn before it and its own."""

    __slots__ = ("before", "mine")

    def __init__(self, before: asyncio.Future[None] | None, mine: asyncio.Future[None]) -> None:
        self.before = before
        self.mine = mine

    def end(self) -> None:
        """End this turn once the one before it ended, so the next never overtakes it."""
        if self.mine.done():
            return
        if self.before is None or self.before.done():
            self.mine.set_result(None)
        else:
            self.before.add_done_callback(self.ended)

    def ended(self, _: object) -> None:
        self.end()


async def decide(
    actors: list[MonitorActor], fault: FaultNotification
) -> list[Decision | BaseException]:
    """Hand `fault` to each matched actor; every turn is taken before the first await, so
    faults keep their arrival order on every monitor. The outcomes in order: a decision (its
    messages confirmed) or the error that stopped it (the caller nacks)."""
    turns = [actor.take_turn() for actor in actors]
    if len(actors) == 1:  # the usual case: in the consumer's own task, no task per fault
        try:
            return [await actors[0].run_turn(turns[0], fault)]
        except Exception as exc:
            return [exc]
    tasks = []
    for actor, turn in zip(actors, turns, strict=True):
        task = asyncio.ensure_future(actor.run_turn(turn, fault))
        # A task cancelled before it started never runs its `finally`: end its turn here.
        task.add_done_callback(turn.ended)
        tasks.append(task)
    return await asyncio.gather(*tasks, return_exceptions=True)


def monitor_actors(
    cluster: ClusterState, outbox: Outbox, decided: dict[str, OrderedDict[str, Decision]]
) -> dict[str, MonitorActor]:
    """One actor per configured monitor, each with the faults it decided before (the journal)."""
    return {
        name: MonitorActor(name, cluster, outbox, decided.get(name))
        for name in cluster.config.monitors
    }
