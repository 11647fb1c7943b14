"""A monitor actor: a fault decided once, republished with the same ids until confirmed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import pytest

from mrwbus.actor import MonitorActor, monitor_actors
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
