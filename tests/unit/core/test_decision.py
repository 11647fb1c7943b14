"""The one `Decision` type, and the one builder of a command and its id."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mrwbus.core import events
from mrwbus.core.decision import (
    CONFIRMED,
    Decision,
    FaultFacts,
    LadderStep,
    NoStep,
    recovery_command,
)
from mrwbus.messages import (
    Action,
    Category,
    CommandStep,
    FinalAction,
    RecoveryCommand,
    derived_id,
)

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


wire_names = st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z")
facts = st.builds(
    FaultFacts,
    category=st.sampled_from(Category),
    device=st.text(min_size=1, max_size=40),
    message=st.text(max_size=200),
)


@given(
    fault=st.text(min_size=1, max_size=200),
    monitor=wire_names,
    server=wire_names,
    action=st.sampled_from([Action.RESTART, Action.FINAL_ACTION, Action.SCRIPT]),
    group=st.none() | wire_names,
    resource=st.none() | wire_names,
    final_action=st.none() | st.sampled_from(FinalAction),
    script=st.none() | st.text(max_size=80),
    fault_facts=st.none() | facts,
)
def test_a_command_built_without_validation_is_what_validation_gives(
    fault: str,
    monitor: str,
    server: str,
    action: Action,
    group: str | None,
    resource: str | None,
    final_action: FinalAction | None,
    script: str | None,
    fault_facts: FaultFacts | None,
) -> None:
    # `recovery_command` skips validation because its inputs were validated before (the
    # configuration, the parsed fault): what it builds must survive the agents' parse unchanged.
    command = recovery_command(
        fault_id=fault,
        monitor=monitor,
        server=server,
        action=action,
        group=group,
        resource=resource,
        final_action=final_action,
        script=script,
        before_script=script,
        fault=fault_facts,
        issued_at=T0,
    )
    assert RecoveryCommand.model_validate_json(command.to_body()) == command
    assert RecoveryCommand.model_validate(command.model_dump()) == command


@given(fault=names, monitor=wire_names, group=wire_names, source=wire_names, to=wire_names)
def test_a_failover_step_built_without_validation_is_what_validation_gives(
    fault: str, monitor: str, group: str, source: str, to: str
) -> None:
    for step in CommandStep:
        command = recovery_command(
            fault_id=fault,
            monitor=monitor,
            server=source if step is CommandStep.STOP else to,
            action=Action.FAILOVER,
            group=group,
            step=step,
            from_server=source,
            to_server=to,
            issued_at=T0,
        )
        assert RecoveryCommand.model_validate_json(command.to_body()) == command


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
