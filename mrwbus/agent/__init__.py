"""Node agents: carry out the recovery commands of one server and report back.

Writing an agent takes a few lines::

    import asyncio
    from mrwbus.agent import Agent, HandlerResult, Outcome
    from mrwbus.messages import RecoveryCommand

    agent = Agent("server1", "amqp://guest:guest@localhost/", state_dir="/var/lib/mrwbus-agent")

    @agent.handler("failover.start")                     # names as in config.HANDLER_NAMES
    async def start(command: RecoveryCommand) -> HandlerResult:
        ok = await bring_up(command.group)               # yours
        return HandlerResult.succeeded("up") if ok else HandlerResult.failed("bring_up failed")

    @agent.handler("restart", group="failover1")         # this group's own, preferred
    async def restart_db(command: RecoveryCommand) -> Outcome:
        return Outcome.SUCCEEDED

    agent.active_groups = {"failover1"}                  # optional: else the journal knows
    asyncio.run(agent.run(asyncio.Event()))

A handler returns a `HandlerResult`, an `Outcome` or None (succeeded); raising is failed,
`TimeoutError` is timed out. A command with no handler is refused, so shutdown, reboot and the
hardware final actions only ever run where a handler for them was registered. The agent keeps
a command ledger under `state_dir/<server>/`, so a command redelivered is never run twice, and it
tracks the groups active on its server from the outcomes (failover start/stop, restart,
stop_group, final actions that take the server down), reporting them at start, on change, on
request and as a heartbeat.

The reference agent (`mrwbus agent`) is `build_reference_agent`: shell handlers from the
configuration (`ShellHandler`), run with the command's facts as MRWBUS_* variables.
"""

from mrwbus.agent.execution import carry_out, groups_after
from mrwbus.agent.handlers import Handler, HandlerResult, HandlerTable, handler_name
from mrwbus.agent.ledger import CommandLedger
from mrwbus.agent.reference import build_reference_agent, run_agent
from mrwbus.agent.runtime import Agent
from mrwbus.agent.shell import CommandScriptHandler, ShellHandler, command_environment
from mrwbus.bus.health import Health
from mrwbus.errors import JournalLocked
from mrwbus.messages import Outcome

__all__ = [
    "Agent",
    "CommandLedger",
    "CommandScriptHandler",
    "Handler",
    "HandlerResult",
    "HandlerTable",
    "Health",
    "JournalLocked",
    "Outcome",
    "ShellHandler",
    "build_reference_agent",
    "carry_out",
    "command_environment",
    "groups_after",
    "handler_name",
    "run_agent",
]
