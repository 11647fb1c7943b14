"""A monitor actor: a fault decided once, republished with the same ids until confirmed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

import pytest

from mrwbus.core.cluster import ClusterState
from mrwbus.core.decision import Decision
from mrwbus.messages import Event, FaultNotification, RecoveryCommand
from mrwbus.service.actor import MonitorActor, decide, monitor_actors
from mrwbus.service.outbox import Outbox
from mrwbus.service.persistence import StateJournal

from .conftest import FaultFactory
from .test_outbox import FakeJournal


class FlakyPublisher:
    """Fails the first `failures` publishes, as a lost session does."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[list[str]] = []

    async def __call__(self, commands: Sequence[RecoveryCommand], found: Sequence[Event]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("lost")
        self.sent.append([command.id for command in commands])


async def test_a_redelivered_fault_republishes_the_same_commands_without_deciding_again(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    log: list[str] = []
    publish = FlakyPublisher(failures=1)
    actor = MonitorActor("mrw1", cluster, Outbox(cast(StateJournal, FakeJournal(log)), publish))
    fault = make_fault("server1", "NIC", "eth0")
    with pytest.raises(ConnectionError):
        await actor.handle(fault)
    faults_after_first = cluster.state_of("mrw1", "server1").faults
    decision = await actor.handle(fault)  # the redelivery
    assert decision.confirmed
    assert cluster.state_of("mrw1", "server1").faults == faults_after_first  # not decided again
    assert publish.sent == [[command.id for command in decision.commands]]
    assert [line for line in log if line.startswith("journal")] == [f"journal mrw1/{fault.id}"]
    again = await actor.handle(fault)  # confirmed: nothing more is sent, nothing decided
    assert again.confirmed and again.commands == ()  # only the fact is kept once confirmed
    assert len(publish.sent) == 1


def test_one_actor_per_monitor(cluster: ClusterState) -> None:
    log: list[str] = []

    async def publish(commands: Sequence[RecoveryCommand], found: Sequence[Event]) -> None:
        pass

    outbox = Outbox(cast(StateJournal, FakeJournal(log)), publish)
    actors = monitor_actors(cluster, outbox, {})
    assert set(actors) == set(cluster.config.monitors)


class GatedActor:
    """mrw1's actor, whose publishes are held until `release`; `decided` lists the fault ids
    in the order they were decided (journaled)."""

    def __init__(self, cluster: ClusterState) -> None:
        self.log: list[str] = []
        self.gate = asyncio.Event()
        outbox = Outbox(cast(StateJournal, FakeJournal(self.log)), self._publish)
        self.actor = monitor_actors(cluster, outbox, {})["mrw1"]

    async def _publish(self, commands: Sequence[RecoveryCommand], found: Sequence[Event]) -> None:
        await self.gate.wait()

    def consume(self, fault: FaultNotification) -> asyncio.Future[list[Decision | BaseException]]:
        return asyncio.ensure_future(decide([self.actor], fault))

    @property
    def decided(self) -> list[str]:
        return [line.split("/")[-1] for line in self.log if line.startswith("journal mrw1/")]


async def test_faults_for_one_monitor_are_handled_in_arrival_order_one_at_a_time(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    gated = GatedActor(cluster)
    faults = [make_fault("server1", "NIC", "eth0") for _ in range(3)]
    running = [gated.consume(fault) for fault in faults]
    await asyncio.sleep(0.01)
    assert gated.decided == [faults[0].id]  # the others wait for its turn to end
    gated.gate.set()
    outcomes = await asyncio.gather(*running)
    assert gated.decided == [fault.id for fault in faults]
    assert all(not isinstance(outcome[0], BaseException) for outcome in outcomes)


@pytest.mark.parametrize("third_arrives", ["before the cancel", "after the cancel"])
async def test_a_cancelled_fault_lets_the_next_go_only_after_the_one_before(
    cluster: ClusterState, make_fault: FaultFactory, third_arrives: str
) -> None:
    gated = GatedActor(cluster)
    first, second, third = (make_fault("server1", "NIC", "eth0") for _ in range(3))
    running_first, running_second = gated.consume(first), gated.consume(second)
    if third_arrives == "before the cancel":
        running_third = gated.consume(third)
    await asyncio.sleep(0.01)
    running_second.cancel()  # a lost session, while it waited for its turn
    await asyncio.sleep(0.01)
    if third_arrives == "after the cancel":  # the cancelled turn was the newest
        running_third = gated.consume(third)
        await asyncio.sleep(0.01)
    assert gated.decided == [first.id]  # the third still waits for the first
    gated.gate.set()
    await asyncio.gather(running_first, running_third)
    assert gated.decided == [first.id, third.id]


async def test_a_fault_for_several_monitors_takes_a_turn_on_each(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    async def publish(commands: Sequence[RecoveryCommand], found: Sequence[Event]) -> None:
        pass

    actors = monitor_actors(cluster, Outbox(cast(StateJournal, FakeJournal([])), publish), {})
    outcomes = await decide([actors["mrw1"], actors["mrw1"]], make_fault("server1", "NIC", "eth0"))
    assert len(outcomes) == 2
    assert not any(isinstance(outcome, BaseException) for outcome in outcomes)
