"""Carrying one command out: choose the handler, run `before_script` and the action, and say
what happened as a `CommandResult`; and what the outcome means for the groups on this server.

No broker and no journal here: the runtime calls `carry_out` at most once per command id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from mrwbus.agent.handlers import (
    BEFORE_SCRIPT,
    Handler,
    HandlerResult,
    HandlerTable,
    NoHandlerName,
    handler_name,
    refusal,
)
from mrwbus.messages import (
    Action,
    CommandResult,
    CommandStep,
    FinalAction,
    Outcome,
    PowerState,
    RecoveryCommand,
    derived_id,
    utc_now,
)

log = logging.getLogger(__name__)

MAX_DETAIL = 4096
"""`CommandResult.detail` allows this many characters."""


def result_id(command_id: str) -> str:
    """A result's id: from the command's, so a result published again is recognisably the same."""
    return derived_id("result", command_id)


def make_result(
    command_id: str,
    server: str,
    outcome: Outcome,
    detail: str,
    before_script_outcome: Outcome | None = None,
    power: PowerState | None = None,
) -> CommandResult:
    return CommandResult(
        id=result_id(command_id),
        command_id=command_id,
        server=server,
        outcome=outcome,
        detail=clip(detail, MAX_DETAIL),
        before_script_outcome=before_script_outcome,
        finished_at=utc_now(),
        power=power,
    )


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, keeping the end (where errors usually are)."""
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


async def call_handler(handler: Handler, command: RecoveryCommand) -> HandlerResult:
    """Run a handler; whatever it returns or raises becomes a `HandlerResult`."""
    try:
        returned = await handler(command)
    except TimeoutError as exc:
        return HandlerResult(Outcome.TIMED_OUT, str(exc) or "the handler timed out")
    except Exception as exc:
        log.exception("handler for command %s raised", command.id)
        return HandlerResult.failed(f"the handler raised {type(exc).__name__}: {exc}")
    if returned is None:
        return HandlerResult.succeeded()
    if isinstance(returned, Outcome):
        return HandlerResult(returned)
    if isinstance(returned, HandlerResult):
        return returned
    return HandlerResult.failed(f"the handler returned {returned!r}, not a HandlerResult")


async def carry_out(command: RecoveryCommand, server: str, handlers: HandlerTable) -> CommandResult:
    """Run a command on this server and return its result; never raises but on cancellation.

    `before_script` runs first when the command has one; its outcome is reported in
    `before_script_outcome` and its failure does not stop the action.
    """
    if command.server != server:
        return make_result(
            command.id,
            server,
            Outcome.REFUSED,
            f"command for {command.server} reached the agent of {server}; refused",
        )
    try:
        name = handler_name(command)
    except NoHandlerName as exc:
        if command.action is Action.FINAL_ACTION and command.final_action is FinalAction.NONE:
            return make_result(command.id, server, Outcome.SUCCEEDED, str(exc))
        return make_result(command.id, server, Outcome.REFUSED, str(exc))
    handler = handlers.find(name, command.group)
    if handler is None:
        return make_result(command.id, server, Outcome.REFUSED, refusal(name, server))

    before: HandlerResult | None = None
    if command.before_script:
        before_handler = handlers.find(BEFORE_SCRIPT, command.group)
        if before_handler is None:
            before = HandlerResult(Outcome.REFUSED, refusal(BEFORE_SCRIPT, server))
        else:
            before = await call_handler(before_handler, command)
        if before.outcome is not Outcome.SUCCEEDED:
            log.warning("before_script of command %s: %s", command.id, before.outcome.value)

    done = await call_handler(handler, command)
    detail = done.detail or f"{name} {done.outcome.value}"
    if before is not None and before.outcome is not Outcome.SUCCEEDED:
        # Said first: the action's own detail is clipped from the front when too long.
        detail = f"before_script {before.outcome.value}: {before.detail}\n{detail}"
    before_outcome = before.outcome if before else None
    return make_result(command.id, server, done.outcome, detail, before_outcome, done.power)


def groups_after(
    active: Iterable[str], command: RecoveryCommand, outcome: Outcome
) -> frozenset[str]:
    """The groups active on this server once `command` ended with `outcome`.

    Only a success changes anything: a failed stop may have left the group half up, and the
    agent does not guess; the service learns the rest from the failed result.
    """
    groups = frozenset(active)
    if outcome is not Outcome.SUCCEEDED:
        return groups
    group = {command.group} if command.group else set()
    match command.action:
        case Action.FAILOVER if command.step is CommandStep.START:
            return groups | group
        case Action.FAILOVER if command.step is CommandStep.STOP:
            return groups - group
        case Action.RESTART:
            return groups | group
        case Action.FINAL_ACTION if command.final_action is FinalAction.STOP_GROUP:
            # No group named: the target was all_groups.
            return groups - group if group else frozenset()
        case Action.FINAL_ACTION if command.final_action and command.final_action.takes_server_down:
            return frozenset()
    return groups
