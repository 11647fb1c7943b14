"""What an agent's result says, as events: how the command went, and whether its before
script failed; or that it came from a server the command was not sent to. Pure."""

from __future__ import annotations

from datetime import datetime

from mrwbus.core import events
from mrwbus.messages import Action, CommandResult, Event, Outcome, RecoveryCommand


def result_events(
    command: RecoveryCommand | None, result: CommandResult, now: datetime
) -> list[Event]:
    """MRW-301/302 for `result` (its command, if the service still knows it), and MRW-305 when
    its before script failed."""
    found: list[Event] = []
    monitor = command.monitor if command else "_"
    action = describe(command) if command else f"command {result.command_id}"
    detail_text = f" ({result.detail})" if result.detail else ""
    kind = (
        events.COMMAND_SUCCEEDED if result.outcome is Outcome.SUCCEEDED else events.COMMAND_FAILED
    )
    facts = {"monitor": monitor, "server": result.server, "command_id": result.command_id}
    found.append(
        kind.make(
            at=now,
            cause=result.id,
            fault_id=command.fault_id if command else None,
            group=command.group if command else None,
            action=action,
            outcome=result.outcome.value.replace("_", " "),
            detail_text=detail_text,
            **facts,
        )
    )
    if result.before_script_outcome not in (None, Outcome.SUCCEEDED):
        assert result.before_script_outcome is not None
        found.append(
            events.BEFORE_SCRIPT_FAILED.make(
                at=now,
                cause=result.id + "/before",
                outcome=result.before_script_outcome.value,
                **facts,
            )
        )
    return found


def wrong_server_event(command: RecoveryCommand, result: CommandResult, now: datetime) -> Event:
    """A result from another server than the one its command was sent to."""
    return events.RESULT_FROM_WRONG_SERVER.make(
        at=now,
        cause=result.id,
        monitor=command.monitor,
        server=result.server,
        fault_id=command.fault_id,
        command_id=command.id,
        group=command.group,
        action=describe(command),
        expected=command.server,
    )


def describe(command: RecoveryCommand) -> str:
    """The command in a few words, for events."""
    if command.step is not None:
        return f"{command.step.value} of {command.group} ({command.action.value})"
    if command.action is Action.FENCE:
        assert command.fence_action is not None
        return f"fence ({command.fence_action.value}) of {command.target}"
    if command.final_action is not None:
        return f"final action {command.final_action.value}"
    return f"{command.action.value} of {command.group or command.script}"
