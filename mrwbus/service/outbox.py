"""The one path every decision takes out of the service: journal, then publish, then ack.

A fault's decision (made by its monitor's actor), a result's, a report's, a tick's and an
operator's request's all go the same way:

1. the decision was applied to the `ClusterState` in the step it was made in, and its journal
   entry takes its place in that same step (no await in between);
2. once the journal confirmed the entry, its commands and events are published through the
   `Publisher`, which waits for the broker's confirms;
3. only then does the caller acknowledge the input; a record that the messages are out is
   journaled without waiting (losing it only means a republish with the same ids).

Nothing is published ahead of its journal entry. A fault's decision is kept by fault id, so a
redelivered fault republishes the same messages instead of deciding again; any other decision
waits in `pending` until it is confirmed, so a lost session loses no command: the next session
publishes what is pending first.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from functools import partial

from mrwbus.bus.history_stream import HistoryRecord
from mrwbus.core.cluster import ClusterState
from mrwbus.core.decision import Decision
from mrwbus.messages import Event, RecoveryCommand, new_id
from mrwbus.service.persistence import StateJournal

log = logging.getLogger(__name__)

Publish = Callable[[Sequence[RecoveryCommand], Sequence[Event]], Awaitable[None]]
"""Publishes through the `Publisher` and returns once the broker confirmed every message."""


class Outbox:
    def __init__(
        self,
        journal: StateJournal,
        publish: Publish,
        pending: OrderedDict[str, Decision] | None = None,
    ) -> None:
        self.journal = journal
        self.publish = publish
        self.pending: OrderedDict[str, Decision] = pending if pending is not None else OrderedDict()
        """Decisions journaled but not yet confirmed by the broker, oldest first."""
        self._lock = asyncio.Lock()

    # --- a fault's decision, by its actor ---------------------------------------------------

    async def journal_fault(
        self,
        cluster: ClusterState,
        monitor: str,
        fault_id: str,
        decision: Decision,
        *,
        history: Sequence[HistoryRecord] = (),
    ) -> None:
        """Journal a fault's decision (its `history` carried in the same journal message); call
        it right after `handle_fault`, with no await in between, so the entry takes its place
        in the same step."""
        await self.journal.decision(
            cluster,
            monitor,
            fault_id,
            decision,
            shared=decision.changes_shared_state,
            history=history,
        )

    def note(self, record: HistoryRecord) -> None:
        """History with no decision of its own (a fault received): before what comes next."""
        self.journal.writer.note(record)

    async def send_fault(self, monitor: str, fault_id: str, decision: Decision) -> Decision:
        """Publish a journaled fault decision (again, if it was not confirmed); the decision
        with `confirmed` set."""
        if decision.confirmed:
            return decision
        return await self._send(decision, partial(self.journal.confirmed, monitor, fault_id))

    # --- any other decision: a result, a report, a tick, an operator's request ----------------

    async def send(
        self,
        cluster: ClusterState,
        decision: Decision,
        history: Sequence[HistoryRecord] = (),
    ) -> None:
        """Journal what the state already changed, then publish the decision's messages.

        Call it right after the change, with no await in between: the journal entry takes its
        place in the same step; `history` rides in its journal message."""
        if not decision.has_messages:
            # State only (an agent's report, a tick): journaled before the caller acks, but
            # lazily, riding with the next entry. An agent sends its report right after its
            # result; written on its own, it held the result's entry (and so the next command
            # of a failover) back by a whole journal confirm. Whatever is decided after it is
            # journaled after it, in the same write or a later one, so nothing is published
            # ahead of it.
            await self.journal.reaction(cluster, "", None, history, lazy=True)
            return
        reaction_id = new_id()
        await self.journal.reaction(cluster, reaction_id, decision, history)
        # Pending only once journaled: nothing is published ahead of its journal entry.
        self.pending[reaction_id] = decision
        await self.flush()

    async def flush(self) -> None:
        """Publish what is pending, in order, each once."""
        async with self._lock:
            while self.pending:
                reaction_id, decision = next(iter(self.pending.items()))
                await self._send(decision, partial(self.journal.reaction_done, reaction_id))
                del self.pending[reaction_id]

    async def _send(
        self, decision: Decision, record_done: Callable[[], asyncio.Future[int]]
    ) -> Decision:
        await self.publish(decision.commands, decision.events)
        # Not awaited: losing this record only means a redelivery republishes the same ids.
        record_done().add_done_callback(_quiet)
        return replace(decision, confirmed=True)


def _quiet(future: asyncio.Future[int]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.debug("confirmation record not journaled: %s", future.exception())
