"""The journal: a command finished is remembered with its result, one started and never
finished is seen as interrupted, the file stays bounded, and one agent holds it at a time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mrwbus.agent.execution import make_result
from mrwbus.agent.ledger import JOURNAL_FILE, CommandLedger, JournalLocked
from mrwbus.messages import CommandResult, Outcome


def result(command_id: str, outcome: Outcome = Outcome.SUCCEEDED) -> CommandResult:
    return make_result(command_id, "server1", outcome, f"{command_id} done")


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "server1"


@pytest.fixture
def journal(directory: Path) -> Iterator[CommandLedger]:
    opened = CommandLedger.open(directory)
    yield opened
    opened.close()


def reopen(journal: CommandLedger, **options: int) -> CommandLedger:
    journal.close()
    return CommandLedger.open(journal.directory, **options)


def test_a_finished_command_is_remembered_with_its_result(journal: CommandLedger) -> None:
    sent = result("cmd-1", Outcome.FAILED)
    journal.start("cmd-1")
    journal.finish(sent, {"failover1"})

    again = reopen(journal)
    try:
        entry = again.lookup("cmd-1")
        assert entry is not None and not entry.interrupted
        assert entry.result == sent  # the very result, same id and finished_at
        assert again.active_groups == {"failover1"}
        assert again.lookup("cmd-2") is None
    finally:
        again.close()


def test_a_command_started_and_never_finished_is_interrupted(journal: CommandLedger) -> None:
    journal.start("cmd-1")  # and the agent is killed here

    again = reopen(journal)
    try:
        entry = again.lookup("cmd-1")
        assert entry is not None
        assert entry.interrupted and entry.result is None
    finally:
        again.close()


def test_every_record_is_one_json_line(journal: CommandLedger) -> None:
    journal.start("cmd-1")
    journal.finish(result("cmd-1"), ["failover1"])
    journal.record_groups([])
    records = [json.loads(line) for line in journal.path.read_text().splitlines()]
    assert [next(iter(record)) for record in records] == ["started", "finished", "groups"]
    assert records[1]["result"]["command_id"] == "cmd-1"
    assert records[1]["active_groups"] == ["failover1"]


def test_groups_come_from_the_last_record(journal: CommandLedger) -> None:
    assert journal.active_groups is None  # a new journal does not know
    journal.start("cmd-1")
    journal.finish(result("cmd-1"), {"failover1", "failover2"})
    journal.record_groups({"failover2"})

    again = reopen(journal)
    try:
        assert again.active_groups == {"failover2"}
    finally:
        again.close()


def test_a_torn_last_line_is_skipped(directory: Path) -> None:
    directory.mkdir(parents=True)
    good = json.dumps({"finished": "cmd-1", "result": result("cmd-1").model_dump(mode="json")})
    (directory / JOURNAL_FILE).write_text(good + '\n{"started": "cmd-2", "a')

    journal = CommandLedger.open(directory)
    try:
        assert journal.lookup("cmd-1") is not None
        assert journal.lookup("cmd-2") is None
        # The rewrite dropped the torn line: appends start on a clean line.
        journal.start("cmd-3")
        assert all(json.loads(line) for line in journal.path.read_text().splitlines())
    finally:
        journal.close()


def test_opening_compacts_to_the_last_commands_kept(directory: Path) -> None:
    journal = CommandLedger.open(directory)
    for number in range(30):
        journal.start(f"cmd-{number}")
        journal.finish(result(f"cmd-{number}"), {"failover1"})
    journal.start("cmd-30")

    again = reopen(journal, keep=10)
    try:
        assert len(again) == 10
        assert again.lookup("cmd-20") is None
        assert again.lookup("cmd-21") is not None
        interrupted = again.lookup("cmd-30")
        assert interrupted is not None and interrupted.interrupted
        assert again.active_groups == {"failover1"}
        # One line per command kept, plus the groups.
        assert len(again.path.read_text().splitlines()) == 11
    finally:
        again.close()


def test_the_file_stays_bounded_while_running(directory: Path) -> None:
    journal = CommandLedger.open(directory, keep=5)
    try:
        for number in range(100):
            journal.start(f"cmd-{number}")
            journal.finish(result(f"cmd-{number}"), ())
        assert len(journal.path.read_text().splitlines()) <= 2 * 5 + 1
        assert len(journal) == 5
        assert journal.lookup("cmd-99") is not None
    finally:
        journal.close()


@pytest.mark.parametrize("writes", range(1, 12))
def test_the_line_that_triggers_a_compaction_survives_it(directory: Path, writes: int) -> None:
    journal = CommandLedger.open(directory, keep=2)
    try:
        for number in range(writes):
            journal.start(f"cmd-{number}")
        last = f"cmd-{writes - 1}"
    finally:
        journal.close()
    reopened = CommandLedger.open(directory, keep=2)
    try:
        entry = reopened.lookup(last)
        assert entry is not None and entry.interrupted  # started, never finished: never run again
    finally:
        reopened.close()


def test_a_second_agent_on_the_same_journal_is_refused(journal: CommandLedger) -> None:
    with pytest.raises(JournalLocked, match="another agent already uses"):
        CommandLedger.open(journal.directory)
    journal.close()
    CommandLedger.open(journal.directory).close()  # free again once closed


def test_a_closed_journal_refuses_writes(journal: CommandLedger) -> None:
    journal.close()
    with pytest.raises(ValueError, match="closed"):
        journal.start("cmd-1")
