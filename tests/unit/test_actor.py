"""A monitor actor: a fault decided once, republished with the same ids until confirmed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

import pytest

from mrwbus.actor import MonitorActor, decide, monitor_actors
from mrwbus.core.cluster import ClusterState
from mrwbus.messages import Event, RecoveryCommand
from mrwbus.outbox import Outbox
from mrwbus.persistence import StateJournal

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


class GatedPublisher:
    """Holds every publish until released."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def __call__(self, commands: Sequence[RecoveryCommand], found: Sequence[Event]) -> None:
        await self.gate.wait()


def decided(log: list[str]) -> list[str]:
    """The fault ids in the order they were decided (journaled)."""
    return [line.split("/")[-1] for line in log if line.startswith("journal mrw1/")]


async def test_faults_for_one_monitor_are_handled_in_arrival_order_one_at_a_time(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    log: list[str] = []
    publish = GatedPublisher()
    actor = monitor_actors(cluster, Outbox(cast(StateJournal, FakeJournal(log)), publish), {})[
        "mrw1"
    ]
    faults = [make_fault("server1", "NIC", "eth0") for _ in range(3)]
    running = [asyncio.ensure_future(decide([actor], fault)) for fault in faults]
    await asyncio.sleep(0.01)
    assert decided(log) == [faults[0].id]  # the others wait for its turn to end
    publish.gate.set()
    outcomes = await asyncio.gather(*running)
    assert decided(log) == [fault.id for fault in faults]
    assert all(not isinstance(outcome[0], BaseException) for outcome in outcomes)


async def test_a_cancelled_fault_lets_the_next_go_only_after_the_one_before(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    log: list[str] = []
    publish = GatedPublisher()
    actor = monitor_actors(cluster, Outbox(cast(StateJournal, FakeJournal(log)), publish), {})[
        "mrw1"
    ]
    first, second, third = (make_fault("server1", "NIC", "eth0") for _ in range(3))
    running_first = asyncio.ensure_future(decide([actor], first))
    running_second = asyncio.ensure_future(decide([actor], second))
    running_third = asyncio.ensure_future(decide([actor], third))
    await asyncio.sleep(0.01)
    running_second.cancel()  # a lost session, while it waited for its turn
    await asyncio.sleep(0.01)
    assert decided(log) == [first.id]  # the third still waits for the first
    publish.gate.set()
    await asyncio.gather(running_first, running_third)
    assert decided(log) == [first.id, third.id]


async def test_a_fault_for_several_monitors_takes_a_turn_on_each(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    async def publish(commands: Sequence[RecoveryCommand], found: Sequence[Event]) -> None:
        pass

    actors = monitor_actors(cluster, Outbox(cast(StateJournal, FakeJournal([])), publish), {})
    outcomes = await decide([actors["mrw1"], actors["mrw1"]], make_fault("server1", "NIC", "eth0"))
    assert len(outcomes) == 2
    assert not any(isinstance(outcome, BaseException) for outcome in outcomes)


async def test_a_fault_cancelled_while_the_only_one_waiting_still_holds_back_the_next(
    cluster: ClusterState, make_fault: FaultFactory
) -> None:
    log: list[str] = []
    publish = GatedPublisher()
    actor = monitor_actors(cluster, Outbox(cast(StateJournal, FakeJournal(log)), publish), {})[
        "mrw1"
    ]
    first, second, third = (make_fault("server1", "NIC", "eth0") for _ in range(3))
    running_first = asyncio.ensure_future(decide([actor], first))
    running_second = asyncio.ensure_future(decide([actor], second))
    await asyncio.sleep(0.01)
    running_second.cancel()  # the newest turn ends while the first still runs
    await asyncio.sleep(0.01)
    running_third = asyncio.ensure_future(decide([actor], third))  # consumed only now
    await asyncio.sleep(0.01)
    assert decided(log) == [first.id]  # it waits for the first all the same
    publish.gate.set()
    await asyncio.gather(running_first, running_third)
    assert decided(log) == [first.id, third.id]
