"""The one `Decision` type, and the one builder of a command and its id."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mrwbus.core import events
from mrwbus.core.decision import CONFIRMED, Decision, LadderStep, NoStep, recovery_command
from mrwbus.messages import Action, CommandStep, FinalAction, derived_id

from ..conftest import T0

names = st.text(alphabet="abcdefghij0123456789-_", min_size=1, max_size=12)


@given(fault=names, monitor=names, server=names, group=st.none() | names)
def test_a_restart_id_is_the_recipe_redelivered_faults_rely_on(
    fault: str, monitor: str, server: str, group: str | None
) -> None:
    command = recovery_command(
        fault_id=fault,
        monitor=monitor,
        server=server,
        action=Action.RESTART,
        group=group,
        issued_at=T0,
    )
    assert command.id == derived_id("command", fault, monitor, server, "restart", group or "", "")


@given(fault=names, monitor=names, server=names, group=names, to=names)
def test_a_failover_step_id_names_its_step_and_destination(
    fault: str, monitor: str, server: str, group: str, to: str
) -> None:
    ids = {
        step: recovery_command(
            fault_id=fault,
            monitor=monitor,
            server=server,
            action=Action.FAILOVER,
            group=group,
            step=step,
            to_server=to,
            issued_at=T0,
        ).id
        for step in CommandStep
    }
    for step, command_id in ids.items():
        assert command_id == derived_id(
            "command", fault, monitor, server, "failover", group, step, to
        )
    assert len(set(ids.values())) == len(ids)


def test_a_fence_is_a_final_action_with_an_id_of_its_own() -> None:
    common = dict(fault_id="f", monitor="m", server="s", group="g", issued_at=T0)
    fence = recovery_command(
        action=Action.FINAL_ACTION,
        final_action=FinalAction.REBOOT,
        fence=True,
        **common,  # type: ignore[arg-type]
    )
    final = recovery_command(action=Action.FINAL_ACTION, final_action=FinalAction.REBOOT, **common)  # type: ignore[arg-type]
    assert fence.id == derived_id("command", "f", "m", "s", "fence", "g")
    assert fence.id != final.id
    assert fence.step is None and fence.final_action is FinalAction.REBOOT


def test_the_same_inputs_give_the_same_command() -> None:
    def make() -> object:
        return recovery_command(
            fault_id="f", monitor="m", server="s", action=Action.SCRIPT, script="/x", issued_at=T0
        )

    assert make() == make()


def test_adding_decisions_keeps_the_order_of_their_messages() -> None:
    first = Decision(events=(events.SERVER_BACK.make(at=T0, cause="a", server="s1"),))
    restart = recovery_command(
        fault_id="f", monitor="m", server="s", action=Action.RESTART, issued_at=T0
    )
    second = Decision(
        commands=(restart,),
        events=(events.SERVER_BACK.make(at=T0, cause="b", server="s2"),),
        moves={"g": None},
        ended=("g",),
    )
    both = first + second
    assert [event.server for event in both.events] == ["s1", "s2"]
    assert both.commands == (restart,)
    assert both.changes_shared_state and both.has_messages
    assert not Decision().has_messages and not Decision().changes_shared_state


def test_a_journal_record_gives_the_same_messages_back() -> None:
    restart = recovery_command(
        fault_id="f", monitor="m", server="s", action=Action.RESTART, issued_at=T0
    )
    decision = Decision(
        commands=(restart,), events=(events.SERVER_BACK.make(at=T0, cause="a", server="s1"),)
    )
    back = Decision.from_value(decision.to_value())
    assert (back.commands, back.events, back.confirmed) == (
        decision.commands,
        decision.events,
        False,
    )
    assert Decision.from_value(CONFIRMED.to_value()).confirmed


def test_a_step_not_taken_says_why() -> None:
    step = LadderStep.none(NoStep.SUSPENDED)
    assert not step.taken and step.not_taken is NoStep.SUSPENDED
    assert step.text.startswith("none: the monitor is suspended")
    assert LadderStep("restart 1 of 3").taken
