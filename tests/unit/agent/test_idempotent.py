"""Each command at most once: finished, still running, or interrupted earlier."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from mrwbus.agent.handlers import HandlerResult, HandlerTable
from mrwbus.agent.idempotent import IdempotentRunner, JournalFailed
from mrwbus.agent.ledger import CommandLedger
from mrwbus.messages import Outcome, RecoveryCommand
from tests.unit.agent.conftest import CommandFactory


class Slow:
    """A handler that holds until released, counting its runs."""

    def __init__(self) -> None:
        self.runs = 0
        self.release = asyncio.Event()

    async def __call__(self, command: RecoveryCommand) -> HandlerResult:
        self.runs += 1
        await self.release.wait()
        return HandlerResult.succeeded(f"run {self.runs}")


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[CommandLedger]:
    opened = CommandLedger.open(tmp_path / "server1")
    yield opened
    opened.close()


class Groups:
    def __init__(self, *active: str) -> None:
        self.active = frozenset(active)

    def get(self) -> frozenset[str]:
        return self.active

    def set(self, groups: frozenset[str]) -> None:
        self.active = groups


def runner(journal: CommandLedger, handler: Slow, groups: Groups) -> IdempotentRunner:
    table = HandlerTable()
    table.add("restart", handler)
    table.add("failover.start", handler)
    return IdempotentRunner("server1", table, journal, groups=groups.get, set_groups=groups.set)


async def test_a_finished_command_gives_its_stored_result(
    journal: CommandLedger, make_command: CommandFactory
) -> None:
    handler, groups = Slow(), Groups()
    handler.release.set()
    once = runner(journal, handler, groups)
    first = await once.result_for(make_command())
    again = await once.result_for(make_command())
    assert first == again and first.detail == "run 1"
    assert handler.runs == 1
    assert once.commands_run == 1
    assert groups.active == {"failover1"}  # a restart makes its group active
    assert journal.active_groups == {"failover1"}


async def test_a_delivery_during_the_run_waits_for_it(
    journal: CommandLedger, make_command: CommandFactory
) -> None:
    handler = Slow()
    once = runner(journal, handler, Groups())
    first = asyncio.create_task(once.result_for(make_command()))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(once.result_for(make_command()))
    await asyncio.sleep(0.05)
    handler.release.set()
    assert await first == await second
    assert handler.runs == 1


async def test_a_cancelled_delivery_does_not_cancel_the_command(
    journal: CommandLedger, make_command: CommandFactory
) -> None:
    handler = Slow()
    once = runner(journal, handler, Groups())
    delivery = asyncio.create_task(once.result_for(make_command()))
    await asyncio.sleep(0.05)
    delivery.cancel()  # the session was lost
    await asyncio.sleep(0.05)
    assert once.running  # still going
    handler.release.set()
    redelivered = await once.result_for(make_command())
    assert redelivered.outcome is Outcome.SUCCEEDED and handler.runs == 1


async def test_a_command_interrupted_earlier_is_failed_and_not_run(
    journal: CommandLedger, make_command: CommandFactory
) -> None:
    journal.start("cmd-1")  # a previous agent process died here
    handler, groups = Slow(), Groups("failover2")
    once = runner(journal, handler, groups)
    result = await once.result_for(make_command(action="failover", step="start"))
    assert result.outcome is Outcome.FAILED
    assert result.detail.startswith("interrupted")
    assert handler.runs == 0
    assert groups.active == {"failover2"}  # unknown, so unchanged
    assert await once.result_for(make_command()) == result  # and so it stays


async def test_a_journal_that_cannot_be_written_stops_the_command(
    journal: CommandLedger, make_command: CommandFactory
) -> None:
    handler = Slow()
    once = runner(journal, handler, Groups())

    def disk_full(command_id: str) -> None:
        raise OSError(28, "No space left on device")

    journal.start = disk_full  # type: ignore[method-assign]
    with pytest.raises(JournalFailed, match="No space left"):
        await once.result_for(make_command())
    assert handler.runs == 0
