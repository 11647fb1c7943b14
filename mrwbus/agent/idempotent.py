"""Each command run at most once, whatever the broker redelivers.

A command id seen before gets the result of its first run: from the journal when that run
finished, from the running task when it is still going (a redelivery after a lost session
waits for it), and `failed` when the journal says it started and never finished (the agent
was killed mid-command; it is not run again, since it may have done half its work).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from mrwbus.agent.execution import carry_out, groups_after, make_result
from mrwbus.agent.handlers import HandlerTable
from mrwbus.agent.ledger import CommandLedger
from mrwbus.errors import JournalFailed
from mrwbus.messages import CommandResult, Outcome, RecoveryCommand

log = logging.getLogger(__name__)

INTERRUPTED = (
    "interrupted: the agent stopped while this command ran (its journal says started, never "
    "finished); not run again, since it may have done part of its work"
)


class IdempotentRunner:
    """Runs commands through `carry_out`, journaled, at most once per command id.

    `groups` and `set_groups` read and update the groups active on the server: a command's
    outcome changes them (`groups_after`), and they are journaled with its result.
    """

    def __init__(
        self,
        server: str,
        handlers: HandlerTable,
        journal: CommandLedger,
        *,
        groups: Callable[[], frozenset[str]],
        set_groups: Callable[[frozenset[str]], None],
    ) -> None:
        self.server = server
        self.handlers = handlers
        self.journal = journal
        self._groups = groups
        self._set_groups = set_groups
        self.running: dict[str, asyncio.Task[CommandResult]] = {}
        self.commands_run = 0

    async def result_for(self, command: RecoveryCommand) -> CommandResult:
        """The command's result: run it the first time; every later delivery gets the same."""
        running = self.running.get(command.id)
        if running is None:
            entry = self.journal.lookup(command.id)
            if entry is not None and entry.result is not None:
                log.info("command %s was handled before; its result is sent again", command.id)
                return entry.result
            work = self._interrupted(command) if entry else self._execute(command)
            running = asyncio.create_task(work, name=f"command:{command.id}")
            self.running[command.id] = running
            running.add_done_callback(lambda _: self.running.pop(command.id, None))
        # Shielded: a lost session cancels its deliveries, never a command halfway.
        return await asyncio.shield(running)

    async def _execute(self, command: RecoveryCommand) -> CommandResult:
        await self._write(self.journal.start, command.id)
        log.info("command %s: %s on %s", command.id, command.routing_key, command.group or "-")
        result = await carry_out(command, self.server, self.handlers)
        groups = groups_after(self._groups(), command, result.outcome)
        await self._write(self.journal.finish, result, groups)
        self.commands_run += 1
        log.info("command %s %s: %s", command.id, result.outcome.value, result.detail)
        self._set_groups(groups)
        return result

    async def _interrupted(self, command: RecoveryCommand) -> CommandResult:
        log.warning("command %s was interrupted earlier; not run again", command.id)
        result = make_result(command.id, self.server, Outcome.FAILED, INTERRUPTED)
        await self._write(self.journal.finish, result, self._groups())
        return result

    async def _write(self, write: Callable[..., None], *args: object) -> None:
        # A worker thread: a slow disk (maybe the very fault at hand) must not stop heartbeats.
        try:
            await asyncio.to_thread(write, *args)
        except OSError as exc:
            raise JournalFailed(f"cannot write the journal: {exc}") from exc
