"""The outbox: nothing published ahead of its journal entry; each decision out once, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import pytest

from mrwbus.core import events
from mrwbus.core.cluster import ClusterState
from mrwbus.core.decision import Decision
from mrwbus.messages import Event, RecoveryCommand
from mrwbus.service.outbox import Outbox
from mrwbus.service.persistence import StateJournal

from .conftest import T0


class FakeJournal:
    """Records what was journaled, in order; each entry confirms when the test says so."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.failed = False
        self.hold = asyncio.Event()
        self.hold.set()
        self.confirming: set[asyncio.Future[None]] = set()

    def _entry(self, what: str) -> asyncio.Future[int]:
        self.log.append(what)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def confirm() -> None:
            await self.hold.wait()
            future.set_result(len(self.log))

        self.confirming.add(asyncio.ensure_future(confirm()))
        return future

    def decision(
        self,
        cluster: Any,
        monitor: str,
        fault_id: str,
        decision: Decision,
        *,
        shared: bool,
        history: Any = (),
    ) -> asyncio.Future[int]:
        return self._entry(f"journal {monitor}/{fault_id}")

    def confirmed(self, monitor: str, fault_id: str) -> asyncio.Future[int]:
        return self._entry(f"confirmed {monitor}/{fault_id}")

    def reaction(
        self,
        cluster: Any,
        reaction_id: str,
        decision: Decision | None,
        history: Any = (),
        *,
        lazy: bool = False,
    ) -> asyncio.Future[int]:
        if decision is not None:
            return self._entry("lazy journal reaction" if lazy else "journal reaction")
        return self._entry("lazy journal state" if lazy else "journal state")

    def reaction_done(self, reaction_id: str) -> asyncio.Future[int]:
        return self._entry("reaction done")


def event(server: str) -> Event:
    return events.SERVER_BACK.make(at=T0, cause="c", server=server)


@pytest.fixture
def log() -> list[str]:
    return []


@pytest.fixture
def outbox(log: list[str]) -> Outbox:
    async def publish(commands: Sequence[RecoveryCommand], found: Sequence[Event]) -> None:
        log.append("publish " + ",".join(str(e.server) for e in found))

    return Outbox(cast(StateJournal, FakeJournal(log)), publish)


async def test_a_fault_decision_is_journaled_then_published_then_marked(
    outbox: Outbox, log: list[str], cluster: ClusterState
) -> None:
    decision = Decision(events=(event("a"),))
    await outbox.journal_fault(cluster, "mrw1", "f-1", decision)
    sent = await outbox.send_fault("mrw1", "f-1", decision)
    assert sent.confirmed and not decision.confirmed
    assert await outbox.send_fault("mrw1", "f-1", sent) is sent  # confirmed: not again
    await asyncio.sleep(0)
    assert log == ["journal mrw1/f-1", "publish a", "confirmed mrw1/f-1"]


async def test_nothing_is_published_before_the_journal_confirms(
    outbox: Outbox, log: list[str], cluster: ClusterState
) -> None:
    journal = cast(FakeJournal, outbox.journal)
    journal.hold.clear()
    sending = asyncio.ensure_future(outbox.send(cluster, Decision(events=(event("a"),))))
    for _ in range(5):
        await asyncio.sleep(0)
    assert log == ["journal reaction"] and not sending.done()
    journal.hold.set()
    await sending
    assert log[:2] == ["journal reaction", "publish a"]
    assert outbox.pending == {}


async def test_pending_decisions_go_out_in_order_once(
    outbox: Outbox, log: list[str], cluster: ClusterState
) -> None:
    outbox.pending["r1"] = Decision(events=(event("a"),))
    outbox.pending["r2"] = Decision(events=(event("b"),))
    await asyncio.gather(outbox.flush(), outbox.flush())
    assert [line for line in log if line.startswith("publish")] == ["publish a", "publish b"]


async def test_a_decision_without_messages_journals_the_state_only(
    outbox: Outbox, log: list[str], cluster: ClusterState
) -> None:
    await outbox.send(cluster, Decision())
    # Lazily: it rides with the next entry (a report must not hold a result's entry back).
    assert log == ["lazy journal state"]
