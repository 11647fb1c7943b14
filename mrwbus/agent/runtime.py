"""The node agent: consumes its server's commands, runs each once, reports results and groups.

A straight line per command: consume from `mrwbus.agent.<server>` (prefetch 1: one command at a
time, in order) -> `parse_command` -> `IdempotentRunner` (journal; handled before? the stored
result) -> `carry_out` -> journal -> publish the result with a confirm -> report a change of
groups -> ack. Report requests (`<server>.report`) arrive in the same queue.

Sessions are run by `bus.session.SessionRunner`, as the service's are: when one breaks
(broker restart, consumer cancelled), the runner connects again and the agent declares its
queue again and consumes again. A command keeps running across a lost session: it runs in a task of
the agent, not of the channel, and its redelivery in the next session waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any, TypeVar

from aio_pika.abc import AbstractIncomingMessage

from mrwbus.agent.execution import make_result
from mrwbus.agent.handlers import Handler, HandlerTable
from mrwbus.agent.idempotent import IdempotentRunner
from mrwbus.agent.inbox import is_report_request, parse_command, salvage_id
from mrwbus.agent.ledger import KEEP, CommandLedger
from mrwbus.agent.probes import Probe, ProbeTable, groups_probed
from mrwbus.agent.stats import AgentStats
from mrwbus.bus.connection import Urls, redact
from mrwbus.bus.identity import effective_sender
from mrwbus.bus.session import SESSION_ERRORS, Session, SessionRunner
from mrwbus.bus.stopping import cancel_within
from mrwbus.bus.supervise import Supervision
from mrwbus.bus.topology import RESULTS, agent_queue, declare_agent_queue, declare_exchanges
from mrwbus.errors import ContractError
from mrwbus.messages import (
    NAME_PATTERN,
    AgentReport,
    CommandResult,
    Outcome,
    RecoveryCommand,
    ReportReason,
    ReportRequest,
    new_id,
    parse_message,
    utc_now,
)

log = logging.getLogger(__name__)

H = TypeVar("H", bound=Handler)


class Agent:
    """A node agent for one server. Register handlers, then `await agent.run(stop)`.

    `state_dir` holds the journal, in `<state_dir>/<server>/`. `initial_groups` are the groups
    active on this server when the journal does not know (its first start); assigning
    `agent.active_groups` says which groups are active now, at any time, and is reported.
    """

    def __init__(
        self,
        server: str,
        amqp_url: Urls,
        state_dir: str | Path,
        *,
        heartbeat_interval: float = 5.0,
        initial_groups: Iterable[str] = (),
        watchdog_interval: float = 1.0,
        shutdown_grace: float | None = None,
        journal_keep: int = KEEP,
        probe_interval: float = 10.0,
        listed_groups: Iterable[str] = (),
        refusal: Callable[[RecoveryCommand, str | None], str | None] | None = None,
    ) -> None:
        if not re.fullmatch(NAME_PATTERN, server):
            raise ValueError(f"{server!r} is not a valid server name (letters, digits, _ and -)")
        if heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval must be positive")
        self.server = server
        self.amqp_url = amqp_url
        self.state_dir = Path(state_dir)
        self.heartbeat_interval = heartbeat_interval
        self.watchdog_interval = watchdog_interval
        self.shutdown_grace = shutdown_grace
        """Seconds a stop waits for the running command; None: until it finishes."""
        self.journal_keep = journal_keep
        self.refusal = refusal
        """Given a command and its AMQP user_id, why not to run it (`agent.acceptance`)."""
        self.handlers = HandlerTable()
        self.probes = ProbeTable()
        """`add_probe`: what asks the system whether a group runs here (`agent.probes`)."""
        self.probe_interval = probe_interval
        self.listed_groups = _group_names(listed_groups)
        """The groups the configuration lists for this server: probed, and a warning at start
        when none of them is active."""
        self.stats = AgentStats()
        """Commands by outcome, handler durations, reports: `--http`'s /metrics."""
        self._probed: frozenset[str] = frozenset()
        self._probing = asyncio.Lock()
        self.session = SessionRunner(amqp_url, name=f"mrwbus-agent-{server}", prefetch=1)
        self.health = self.session.health
        self.supervision = Supervision(self.health)
        """The agent's own tasks (probes, reports): restarted when they fail, and shown."""
        self.ready = self.session.ready
        """Set while the agent consumes its queue."""
        self._groups = _group_names(initial_groups)
        self._groups_given = False
        self._journal: CommandLedger | None = None
        self._runner: IdempotentRunner | None = None
        self._groups_unreported = False
        self._changed = asyncio.Event()
        self.executor_notes: Callable[[], list[str]] | None = None
        """What the executor (Pacemaker) recovers by itself, sent with every report."""

    # --- the API for agent authors ------------------------------------------------------

    def handler(self, name: str, *, group: str | None = None) -> Callable[[H], H]:
        """Decorator: `@agent.handler("failover.start")`, or for one group only."""

        def register(function: H) -> H:
            self.add_handler(name, function, group=group)
            return function

        return register

    def add_handler(self, name: str, handler: Handler, *, group: str | None = None) -> None:
        self.handlers.add(name, handler, group=group)

    def add_probe(self, probe: Probe, *, group: str | None = None) -> None:
        """`probe(group) -> True | False | None`: whether the group runs here (None: cannot
        tell); for one group, or for every group without its own."""
        self.probes.add(probe, group)

    @property
    def active_groups(self) -> frozenset[str]:
        """The groups active on this server, as the agent knows them."""
        return self._groups

    @active_groups.setter
    def active_groups(self, groups: Iterable[str]) -> None:
        new = _group_names(groups)
        if self._journal is None:
            # Before `run`: it overrides what the journal remembers.
            self._groups, self._groups_given = new, True
            return
        if new != self._groups:
            self._journal.record_groups(new)
            self._groups = new
            self._groups_unreported = True
            self._changed.set()

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set; survive broker outages by starting a new session.

        On stop: take no new command, let the running one finish (see `shutdown_grace`),
        publish its result, acknowledge it, close.
        """
        journal = await asyncio.to_thread(
            CommandLedger.open, self.state_dir / self.server, keep=self.journal_keep
        )
        self._journal = journal
        self._runner = IdempotentRunner(
            self.server,
            self.handlers,
            journal,
            groups=lambda: self._groups,
            set_groups=self._groups_changed,
            stats=self.stats,
        )
        if self._groups_given:
            await asyncio.to_thread(journal.record_groups, self._groups)
        elif journal.active_groups is not None:
            self._groups = journal.active_groups
        await self.probe()
        if not self._groups and self.listed_groups:
            log.warning(
                "agent of %s reports no group active while the configuration lists %s for it; "
                "without probes or initial_groups the service will find every recovery target "
                "not active here",
                self.server,
                ", ".join(sorted(self.listed_groups)),
            )
        log.info(
            "agent of %s: handlers %s, active groups %s, journal %s",
            self.server,
            ", ".join(self.handlers.names()) or "(none)",
            ", ".join(sorted(self._groups)) or "(none)",
            journal.path,
        )
        prober = (
            asyncio.create_task(
                self.supervision.supervise("probes", self._probe_periodically, stop)
            )
            if self.probes
            else None
        )
        try:
            await self.session.run(stop, lambda session: self._session(session, stop))
        finally:
            if prober is not None:
                await cancel_within(prober)
            await self._drain(set(self._runner.running.values()))
            self._journal = self._runner = None
            journal.close()

    async def _session(self, session: Session, stop: asyncio.Event) -> None:
        exchanges = await declare_exchanges(session.channel)
        queue = await declare_agent_queue(session.channel, exchanges, self.server)
        session.use_exchanges(exchanges)
        await self._report(ReportReason.START)
        self._groups_unreported = False
        await session.consume(queue, self._on_message)
        session.consuming()
        log.info("agent of %s consuming %s on %s", self.server, queue.name, redact(session.url))

        reporter = asyncio.create_task(
            self.supervision.supervise("reports", self._report_periodically, stop)
        )
        try:
            await session.watch(stop, self.watchdog_interval)
            # Graceful stop: take no new command, finish the one in hand (it acks), close.
            await session.drain(self.shutdown_grace)
        finally:
            await cancel_within(reporter)

    async def _drain(self, tasks: Collection[asyncio.Future[Any]]) -> None:
        if not tasks:
            return
        log.info("agent of %s finishing the command in hand before it stops", self.server)
        _, pending = await asyncio.wait(tasks, timeout=self.shutdown_grace)
        for task in pending:
            # Its journal says started: on the next start it is reported interrupted.
            log.warning("agent of %s stops with a command unfinished", self.server)
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    # --- deliveries ---------------------------------------------------------------------

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # A failure here is the session's to handle (`Session.consume`): a lost session leaves
        # the message to redelivery, anything else (a ledger that cannot be written) hands it
        # back to the queue, whose delivery limit dead-letters a message that keeps failing.
        if is_report_request(message.routing_key or "", self.server):
            await self._on_report_request(message)
        else:
            await self._on_command(message)

    async def _on_command(self, message: AbstractIncomingMessage) -> None:
        try:
            command = parse_command(message.body, message.routing_key or "", self.server)
        except ContractError as exc:
            await self._reject(message, str(exc))
            return
        if self.refusal and (
            problem := self.refusal(command, effective_sender(message.user_id, message.headers))
        ):
            return await self._reject(message, f"refused: {problem}")
        result = await self._current_runner().result_for(command)
        await self._send(result)
        await self.probe()
        await self._report_change()
        await message.ack()

    async def _reject(self, message: AbstractIncomingMessage, problem: str) -> None:
        """A message that is no valid command: dead-lettered, refused if it has an id, acked."""
        log.warning("agent of %s rejects message %s: %s", self.server, message.message_id, problem)
        await self.session.current_publisher().dead_letter(message, problem)
        command_id = salvage_id(message.body)
        if command_id is not None:
            await self._send(
                make_result(command_id, self.server, Outcome.REFUSED, f"invalid command: {problem}")
            )
        await message.ack()

    async def _send(self, result: CommandResult) -> None:
        # Not mandatory: the service's results queue holds it, or nobody is listening yet.
        await self.session.current_publisher().publish(
            RESULTS, result.routing_key, result, mandatory=False
        )

    # --- reports ------------------------------------------------------------------------

    async def _on_report_request(self, message: AbstractIncomingMessage) -> None:
        try:
            parse_message(ReportRequest, message.body)
        except ContractError as exc:
            # Answered anyway: a report is harmless, and the asker wants one.
            log.warning("malformed report request %s: %s", message.message_id, exc)
        await self._report(ReportReason.ASKED)
        await message.ack()

    async def _report(self, reason: ReportReason) -> None:
        report = AgentReport(
            id=new_id(),
            server=self.server,
            active_groups=sorted(self._groups),
            probed_groups=sorted(self._probed),
            reason=reason,
            heartbeat_interval=self.heartbeat_interval,
            sent_at=utc_now(),
            node=self.health.node,
            executor_notes=self.executor_notes()[:20] if self.executor_notes else [],
        )
        await self.session.current_publisher().publish(
            RESULTS, report.routing_key, report, mandatory=False
        )
        self.stats.reported()

    async def _report_change(self) -> None:
        if not self._groups_unreported:
            return
        self._groups_unreported = False
        try:
            await self._report(ReportReason.CHANGE)
        except BaseException:
            self._groups_unreported = True
            raise

    async def _report_periodically(self) -> None:
        while True:
            changed = False
            with contextlib.suppress(TimeoutError):
                changed = await asyncio.wait_for(self._changed.wait(), self.heartbeat_interval)
            self._changed.clear()
            try:
                if self._groups_unreported:
                    await self._report_change()
                elif not changed:
                    await self._report(ReportReason.HEARTBEAT)
            except SESSION_ERRORS as exc:
                # The watchdog ends the session when the channel is gone; until then, go on.
                log.warning("agent of %s could not report: %s", self.server, exc)

    # --- probes -------------------------------------------------------------------------

    async def probe(self) -> dict[str, bool]:
        """Run the probes now; the active groups follow what they see. Returns what they saw."""
        if not self.probes:
            return {}
        async with self._probing:
            runner = self._runner
            done_before = runner.commands_run if runner else 0
            seen = await self.probes.run(self.listed_groups | self._groups)
            if runner is not None and (runner.running or runner.commands_run != done_before):
                return seen  # a command changed the groups meanwhile: its probe decides
            self._probed = frozenset(seen)
            groups = groups_probed(self._groups, seen)
            if groups != self._groups:
                log.info(
                    "agent of %s: probes see %s active (journal said %s)",
                    self.server,
                    ", ".join(sorted(groups)) or "no group",
                    ", ".join(sorted(self._groups)) or "no group",
                )
                if self._journal is not None:
                    await asyncio.to_thread(self._journal.record_groups, groups)
                self._groups = groups
                self._groups_unreported = True
                self._changed.set()
            return seen

    async def _probe_periodically(self) -> None:
        while self.probes:
            await asyncio.sleep(self.probe_interval)
            runner = self._runner
            if runner is None or not runner.running:  # a command's own probe follows it
                await self.probe()

    # --- inside -------------------------------------------------------------------------

    def _current_runner(self) -> IdempotentRunner:
        if self._runner is None:
            raise RuntimeError("the agent is not running")
        return self._runner

    def _groups_changed(self, groups: frozenset[str]) -> None:
        """After a command: the change is reported after its result, by its delivery."""
        if groups != self._groups:
            self._groups = groups
            self._groups_unreported = True

    def __repr__(self) -> str:
        return f"Agent({self.server!r}, queue={agent_queue(self.server)!r})"


def _group_names(groups: Iterable[str]) -> frozenset[str]:
    names = frozenset(groups)
    for name in names:
        if not re.fullmatch(NAME_PATTERN, name):
            raise ValueError(f"{name!r} is not a valid group name (letters, digits, _ and -)")
    return names
