"""Handlers: what an agent runs for each kind of command, generic or for one group.

A handler is any `async def handler(command: RecoveryCommand)` that returns a `HandlerResult`,
an `Outcome`, or `None` (succeeded); raising counts as failed, `TimeoutError` as timed out.
Handlers are looked up by name (the names of `config.HANDLER_NAMES`): the command's group's own
handler first, then the generic one. Nothing is ever run by default: a command with no handler
is refused, which is what keeps shutdown, reboot and the BMC actions from running unconfigured.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias

from mrwbus.config.model import HANDLER_NAMES
from mrwbus.messages import Action, FinalAction, Outcome, PowerState, RecoveryCommand

BEFORE_SCRIPT = "before_script"
FENCE = "fence"
"""The handler of a fence through another server's BMC (`agent.fence_agents`); no configured one."""


@dataclass(frozen=True)
class HandlerResult:
    """How a handler went: the outcome, and one or a few lines for operators."""

    outcome: Outcome
    detail: str = ""
    power: PowerState | None = None
    """A fence: the target's power as its BMC reported it afterwards."""

    @classmethod
    def succeeded(cls, detail: str = "") -> HandlerResult:
        return cls(Outcome.SUCCEEDED, detail)

    @classmethod
    def failed(cls, detail: str) -> HandlerResult:
        return cls(Outcome.FAILED, detail)


Handler: TypeAlias = Callable[[RecoveryCommand], Awaitable[HandlerResult | Outcome | None]]


class NoHandlerName(ValueError):
    """Raised by `handler_name` for a command that no handler can carry out; the text is the
    detail of the refused result."""


def handler_name(command: RecoveryCommand) -> str:
    """The handler a command needs: restart, failover.stop, script, final_action.reboot, ..."""
    match command.action:
        case Action.RESTART | Action.SCRIPT:
            return command.action.value
        case Action.FAILOVER:
            if command.step is None:
                raise NoHandlerName("a failover command must say its step (stop or start)")
            return f"failover.{command.step.value}"
        case Action.FINAL_ACTION:
            if command.final_action is None:
                raise NoHandlerName("a final_action command must name its final action")
            if command.final_action is FinalAction.NONE:
                raise NoHandlerName("final action none has nothing to run")
            return f"final_action.{command.final_action.value}"
        case Action.FENCE:
            if command.target is None or command.fence_action is None:
                raise NoHandlerName("a fence command must name its target and fence action")
            return FENCE
    raise NoHandlerName(f"unknown action {command.action!r}")  # pragma: no cover


def is_dangerous(name: str) -> bool:
    """True for the final actions that take the whole server down."""
    prefix = "final_action."
    if not name.startswith(prefix):
        return False
    return FinalAction(name.removeprefix(prefix)).takes_server_down


def refusal(name: str, server: str) -> str:
    """The detail of a result refused for want of a handler."""
    detail = f"no handler configured for {name} on {server}"
    if is_dangerous(name):
        detail += "; dangerous final actions run only when configured"
    return detail


class HandlerTable:
    """Handlers by name, generic and per group; `find` prefers the group's own."""

    def __init__(self) -> None:
        self._generic: dict[str, Handler] = {}
        self._by_group: dict[str, dict[str, Handler]] = {}

    def add(self, name: str, handler: Handler, *, group: str | None = None) -> None:
        if name == "probe":
            raise ValueError("a probe is no command handler: use Agent.add_probe")
        if name not in (*HANDLER_NAMES, FENCE):
            raise ValueError(f"{name!r} is not a handler name; known: {', '.join(HANDLER_NAMES)}")
        table = self._generic if group is None else self._by_group.setdefault(group, {})
        table[name] = handler

    def find(self, name: str, group: str | None) -> Handler | None:
        if group is not None and name in self._by_group.get(group, {}):
            return self._by_group[group][name]
        return self._generic.get(name)

    def names(self, group: str | None = None) -> list[str]:
        """The handler names available for a group (or generically), for logs and docs."""
        found = set(self._generic)
        if group is not None:
            found |= set(self._by_group.get(group, {}))
        return sorted(found, key=(*HANDLER_NAMES, FENCE).index)
