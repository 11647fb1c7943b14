"""One monitor on one server: its state and the steps of its recovery ladder."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mrwbus.config.model import RecoveryConfig
from mrwbus.core.monitor import MonitorServerState, Status, Step, count_step, next_step
from mrwbus.messages import Action, FinalAction

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def recovery(action: Action, **settings: object) -> RecoveryConfig:
    return RecoveryConfig.model_validate({"action": action, "target": "web", **settings})


def climb(config: RecoveryConfig, rungs: int) -> list[Step]:
    """The steps of `rungs` faults in a row, each one cleared (counts kept) before the next."""
    state = MonitorServerState()
    steps = []
    for _ in range(rungs):
        step = next_step(config, state)
        steps.append(step)
        state = count_step(config, state, step)
    return steps


# --- the ladder ------------------------------------------------------------------------------


@pytest.mark.parametrize("max_restarts", [0, 1, 3])
def test_restart_ladder_restarts_then_final_once_then_nothing(max_restarts: int) -> None:
    config = recovery(Action.RESTART, max_restarts=max_restarts, final_action="shutdown")
    assert climb(config, max_restarts + 3) == (
        [Step.ACTION] * max_restarts + [Step.FINAL, Step.EXHAUSTED, Step.EXHAUSTED]
    )


@pytest.mark.parametrize("max_failovers", [0, 2])
def test_failover_ladder(max_failovers: int) -> None:
    config = recovery(Action.FAILOVER, max_failovers=max_failovers, final_action="stop_group")
    assert climb(config, max_failovers + 2) == (
        [Step.ACTION] * max_failovers + [Step.FINAL, Step.EXHAUSTED]
    )


def test_restart_ladder_ignores_max_failovers_and_the_other_way_round() -> None:
    assert climb(recovery(Action.RESTART, max_restarts=1, max_failovers=5), 3) == [
        Step.ACTION,
        Step.FINAL,
        Step.EXHAUSTED,
    ]
    assert climb(recovery(Action.FAILOVER, max_restarts=5, max_failovers=1), 3) == [
        Step.ACTION,
        Step.FINAL,
        Step.EXHAUSTED,
    ]


def test_final_action_only_is_taken_once() -> None:
    assert climb(recovery(Action.FINAL_ACTION, final_action="reboot"), 3) == [
        Step.FINAL,
        Step.EXHAUSTED,
        Step.EXHAUSTED,
    ]


def test_script_runs_on_every_error() -> None:
    assert climb(recovery(Action.SCRIPT, script="/opt/fix.sh"), 4) == [Step.ACTION] * 4


def test_count_step_counts_the_configured_action() -> None:
    state = MonitorServerState()
    restarted = count_step(recovery(Action.RESTART), state, Step.ACTION)
    assert (restarted.restarts, restarted.failovers) == (1, 0)
    failed_over = count_step(recovery(Action.FAILOVER), state, Step.ACTION)
    assert (failed_over.restarts, failed_over.failovers) == (0, 1)
    scripted = count_step(recovery(Action.SCRIPT, script="x"), state, Step.ACTION)
    assert scripted == state
    final = count_step(recovery(Action.RESTART), state, Step.FINAL)
    assert final.final_action_taken is True
    assert final.restarts == 0
    assert count_step(recovery(Action.RESTART), final, Step.EXHAUSTED) == final


def test_reset_counts_start_the_ladder_again() -> None:
    config = recovery(Action.RESTART, max_restarts=1)
    state = MonitorServerState(restarts=1, final_action_taken=True)
    assert next_step(config, state) is Step.EXHAUSTED
    assert next_step(config, state.with_counts_reset()) is Step.ACTION


# --- the state -------------------------------------------------------------------------------


def test_record_fault_counts_and_remembers_the_last_fault() -> None:
    state = MonitorServerState().record_fault("f-1", "eth0", "link down", T0)
    state = state.record_fault("f-2", "eth1", "crc errors", T0 + timedelta(seconds=5))
    assert state.faults == 2
    assert state.last_fault_id == "f-2"
    assert state.last_device == "eth1"
    assert state.last_message == "crc errors"
    assert state.last_fault_at == T0 + timedelta(seconds=5)
    assert state.status is Status.NORMAL  # recording alone changes no status


def test_clear_keeps_counts_and_reset_zeroes_them() -> None:
    state = MonitorServerState(
        status=Status.ERROR, restarts=2, failovers=1, final_action_taken=True, faults=7
    )
    cleared = state.cleared()
    assert cleared.status is Status.NORMAL
    assert (cleared.restarts, cleared.failovers, cleared.final_action_taken) == (2, 1, True)
    reset = state.cleared(reset_counts=True)
    assert reset.status is Status.NORMAL
    assert (reset.restarts, reset.failovers, reset.final_action_taken) == (0, 0, False)
    assert reset.faults == 7  # the fault tally is history, not a count of the ladder


def test_to_error_changes_only_the_status() -> None:
    state = MonitorServerState(restarts=1)
    assert state.to_error() == replace(state, status=Status.ERROR)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (MonitorServerState(), False),
        (MonitorServerState(faults=3), False),
        (MonitorServerState(restarts=1), True),
        (MonitorServerState(failovers=1), True),
        (MonitorServerState(final_action_taken=True), True),
    ],
)
def test_has_counts(state: MonitorServerState, expected: bool) -> None:
    assert state.has_counts is expected


@pytest.mark.parametrize(
    ("elapsed", "expired"),
    [
        (timedelta(seconds=89), False),
        (timedelta(seconds=90), True),  # exactly that long has passed
        (timedelta(hours=5), True),
    ],
)
def test_counts_expire_once_reset_after_has_passed_since_the_last_fault(
    elapsed: timedelta, expired: bool
) -> None:
    state = MonitorServerState(restarts=1, last_fault_at=T0)
    assert state.counts_expired(timedelta(seconds=90), T0 + elapsed) is expired


def test_counts_do_not_expire_without_reset_after_counts_or_a_fault() -> None:
    later = T0 + timedelta(days=30)
    assert not MonitorServerState(restarts=1, last_fault_at=T0).counts_expired(None, later)
    assert not MonitorServerState(last_fault_at=T0).counts_expired(timedelta(seconds=1), later)
    assert not MonitorServerState(restarts=1).counts_expired(timedelta(seconds=1), later)


def test_final_action_default_is_none() -> None:
    assert recovery(Action.RESTART).final_action is FinalAction.NONE
