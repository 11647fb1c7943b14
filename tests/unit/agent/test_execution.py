"""Carrying a command out: which handler runs, what is refused, how before_script goes, and
what each outcome means for the groups active on the server."""

from __future__ import annotations

import pytest

from mrwbus.agent.execution import carry_out, groups_after, result_id
from mrwbus.agent.handlers import HandlerResult, HandlerTable, handler_name, is_dangerous
from mrwbus.config.model import HANDLER_NAMES
from mrwbus.messages import FinalAction, Outcome, RecoveryCommand, derived_id
from tests.unit.agent.conftest import CommandFactory, command


class Recorder:
    """A handler that records its calls and answers as told."""

    def __init__(self, answer: HandlerResult | Outcome | None = None, label: str = "") -> None:
        self.answer = answer
        self.label = label
        self.calls: list[RecoveryCommand] = []

    async def __call__(self, command: RecoveryCommand) -> HandlerResult | Outcome | None:
        self.calls.append(command)
        return self.answer


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"action": "restart"}, "restart"),
        ({"action": "failover", "step": "stop"}, "failover.stop"),
        ({"action": "failover", "step": "start"}, "failover.start"),
        ({"action": "script", "script": "/opt/fix.sh"}, "script"),
        ({"action": "final_action", "final_action": "stop_group"}, "final_action.stop_group"),
        ({"action": "final_action", "final_action": "bmc_nmi"}, "final_action.bmc_nmi"),
    ],
)
def test_handler_name(fields: dict[str, str], name: str) -> None:
    assert handler_name(command(**fields)) == name
    assert name in HANDLER_NAMES


def test_dangerous_are_the_final_actions_that_take_the_server_down() -> None:
    dangerous = {name for name in HANDLER_NAMES if is_dangerous(name)}
    assert dangerous == {
        f"final_action.{action.value}" for action in FinalAction if action.takes_server_down
    }
    assert "final_action.stop_group" not in dangerous


def test_an_unknown_handler_name_cannot_be_registered() -> None:
    with pytest.raises(ValueError, match="not a handler name"):
        HandlerTable().add("final_action.explode", Recorder())


async def test_the_group_handler_is_preferred_to_the_generic_one(
    make_command: CommandFactory,
) -> None:
    generic, own = Recorder(HandlerResult.succeeded("generic")), Recorder(Outcome.SUCCEEDED)
    table = HandlerTable()
    table.add("restart", generic)
    table.add("restart", own, group="failover1")

    result = await carry_out(make_command(group="failover1"), "server1", table)
    assert len(own.calls) == 1 and not generic.calls
    assert result.outcome is Outcome.SUCCEEDED

    result = await carry_out(make_command(id="cmd-2", group="failover2"), "server1", table)
    assert len(generic.calls) == 1
    assert result.detail == "generic"


async def test_the_result_says_which_command_it_answers(make_command: CommandFactory) -> None:
    table = HandlerTable()
    table.add("restart", Recorder())
    result = await carry_out(make_command(id="cmd-9"), "server1", table)
    assert result.command_id == "cmd-9"
    assert result.id == result_id("cmd-9") == derived_id("result", "cmd-9")
    assert result.server == "server1"
    assert result.routing_key == "server1.result"
    assert result.before_script_outcome is None


async def test_a_dangerous_final_action_without_handler_is_refused(
    make_command: CommandFactory,
) -> None:
    table = HandlerTable()
    table.add("restart", Recorder())
    table.add("final_action.reboot", Recorder(), group="failover2")  # another group's only

    shutdown = make_command(action="final_action", final_action="shutdown")
    result = await carry_out(shutdown, "server1", table)
    assert result.outcome is Outcome.REFUSED
    assert result.detail == (
        "no handler configured for final_action.shutdown on server1; "
        "dangerous final actions run only when configured"
    )
    reboot = make_command(action="final_action", final_action="reboot", group="failover1")
    assert (await carry_out(reboot, "server1", table)).outcome is Outcome.REFUSED


async def test_a_configured_dangerous_final_action_runs(make_command: CommandFactory) -> None:
    reboot = Recorder()
    table = HandlerTable()
    table.add("final_action.reboot", reboot)
    result = await carry_out(
        make_command(action="final_action", final_action="reboot"), "server1", table
    )
    assert result.outcome is Outcome.SUCCEEDED and len(reboot.calls) == 1


async def test_any_command_without_handler_is_refused(make_command: CommandFactory) -> None:
    result = await carry_out(make_command(), "server1", HandlerTable())
    assert result.outcome is Outcome.REFUSED
    assert result.detail == "no handler configured for restart on server1"


async def test_final_action_none_has_nothing_to_do(make_command: CommandFactory) -> None:
    result = await carry_out(
        make_command(action="final_action", final_action="none"), "server1", HandlerTable()
    )
    assert result.outcome is Outcome.SUCCEEDED


async def test_a_failover_without_step_is_refused(make_command: CommandFactory) -> None:
    table = HandlerTable()
    table.add("failover.stop", Recorder())
    result = await carry_out(make_command(action="failover"), "server1", table)
    assert result.outcome is Outcome.REFUSED
    assert "step" in result.detail


async def test_a_command_for_another_server_is_refused(make_command: CommandFactory) -> None:
    restart = Recorder()
    table = HandlerTable()
    table.add("restart", restart)
    result = await carry_out(make_command(server="server2"), "server1", table)
    assert result.outcome is Outcome.REFUSED
    assert result.server == "server1"
    assert "server2" in result.detail
    assert not restart.calls


async def test_before_script_runs_first_and_its_failure_does_not_stop_the_action(
    make_command: CommandFactory,
) -> None:
    order: list[str] = []

    async def before(command: RecoveryCommand) -> HandlerResult:
        order.append("before_script")
        return HandlerResult.failed("exit status 2: no logs to collect")

    async def restart(command: RecoveryCommand) -> None:
        order.append("restart")

    table = HandlerTable()
    table.add("before_script", before)
    table.add("restart", restart)
    result = await carry_out(make_command(before_script="/opt/collect.sh"), "server1", table)
    assert order == ["before_script", "restart"]
    assert result.outcome is Outcome.SUCCEEDED
    assert result.before_script_outcome is Outcome.FAILED
    assert "no logs to collect" in result.detail


async def test_before_script_without_handler_is_reported_refused(
    make_command: CommandFactory,
) -> None:
    table = HandlerTable()
    table.add("restart", Recorder())
    result = await carry_out(make_command(before_script="/opt/collect.sh"), "server1", table)
    assert result.outcome is Outcome.SUCCEEDED
    assert result.before_script_outcome is Outcome.REFUSED


async def test_no_before_script_no_before_script_outcome(make_command: CommandFactory) -> None:
    before = Recorder()
    table = HandlerTable()
    table.add("restart", Recorder())
    table.add("before_script", before)
    result = await carry_out(make_command(), "server1", table)
    assert result.before_script_outcome is None and not before.calls


async def test_a_handler_that_raises_has_failed(make_command: CommandFactory) -> None:
    async def broken(command: RecoveryCommand) -> None:
        raise RuntimeError("the disk is gone")

    async def slow(command: RecoveryCommand) -> None:
        raise TimeoutError

    table = HandlerTable()
    table.add("restart", broken)
    table.add("failover.start", slow)
    result = await carry_out(make_command(), "server1", table)
    assert result.outcome is Outcome.FAILED
    assert result.detail == "the handler raised RuntimeError: the disk is gone"
    started = await carry_out(make_command(action="failover", step="start"), "server1", table)
    assert started.outcome is Outcome.TIMED_OUT


async def test_a_long_detail_is_clipped_from_the_front(make_command: CommandFactory) -> None:
    table = HandlerTable()
    table.add("restart", Recorder(HandlerResult.failed("x" * 5000 + "the end")))
    result = await carry_out(make_command(), "server1", table)
    assert len(result.detail) == 4096
    assert result.detail.endswith("the end")


# --- groups ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "before", "after"),
    [
        ({"action": "failover", "step": "start"}, set(), {"failover1"}),
        ({"action": "failover", "step": "stop"}, {"failover1", "g2"}, {"g2"}),
        ({"action": "restart"}, set(), {"failover1"}),
        ({"action": "restart"}, {"failover1"}, {"failover1"}),
        ({"action": "script", "script": "/x"}, {"g2"}, {"g2"}),
        ({"action": "final_action", "final_action": "stop_group"}, {"failover1", "g2"}, {"g2"}),
        ({"action": "final_action", "final_action": "stop_group", "group": None}, {"g2"}, set()),
        ({"action": "final_action", "final_action": "none"}, {"g2"}, {"g2"}),
        ({"action": "final_action", "final_action": "shutdown"}, {"failover1", "g2"}, set()),
        ({"action": "final_action", "final_action": "bmc_power_off"}, {"g2"}, set()),
        ({"action": "final_action", "final_action": "stop_cluster_service"}, {"g2"}, set()),
    ],
)
def test_groups_after_a_success(fields: dict[str, str], before: set[str], after: set[str]) -> None:
    assert groups_after(before, command(**fields), Outcome.SUCCEEDED) == after


@pytest.mark.parametrize("outcome", [Outcome.FAILED, Outcome.TIMED_OUT, Outcome.REFUSED])
def test_groups_do_not_change_without_success(outcome: Outcome) -> None:
    stop = command(action="failover", step="stop")
    assert groups_after({"failover1"}, stop, outcome) == {"failover1"}
