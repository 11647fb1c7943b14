"""The service: wires the matcher, the monitor actors and the bus, and owns reconnection.

One fault reads as a straight line: consume -> `parse_fault` -> `MonitorIndex.match` ->
each matched `MonitorActor` (decide, apply, publish with confirms) -> ack. A session is one
connection, run by `bus.session.SessionRunner`: when it breaks (broker restart, consumer
cancelled), the runner connects again and the service declares the topology again, waits for
the leader lock, rebuilds its state from the journal and consumes again. A journal that
cannot be written (`JournalFailed`) is no outage: the replica steps down and stands by.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Sequence

from aio_pika.abc import AbstractIncomingMessage

from mrwbus.alerting.forwarder import declare_alerting, forwarder_for, serve_beside
from mrwbus.bus.connection import redact
from mrwbus.bus.health import Counters, Health
from mrwbus.bus.history_stream import HistoryRecord, RecentHistory
from mrwbus.bus.identity import effective_sender
from mrwbus.bus.leader import beat
from mrwbus.bus.publisher import Publisher
from mrwbus.bus.queues import QueueWatcher
from mrwbus.bus.session import Session, SessionRunner
from mrwbus.bus.stopping import cancel_within
from mrwbus.bus.topology import COMMANDS, Topology, declare_agent_queue, declare_service_topology
from mrwbus.config.model import ClusterConfig
from mrwbus.config.settings import ServiceSettings
from mrwbus.core import events, history
from mrwbus.core.cluster import ClusterState
from mrwbus.core.decision import Decision
from mrwbus.core.matching import MonitorIndex, route_fault
from mrwbus.core.status import status_report
from mrwbus.errors import ContractError, JournalFailed, NotConnected
from mrwbus.logs import log_event
from mrwbus.messages import (
    CommandResult,
    ControlReply,
    ControlRequest,
    ControlVerb,
    Event,
    RecoveryCommand,
    StatusReport,
    parse_agent_message,
    parse_fault,
    utc_now,
)
from mrwbus.messages.bus import RecentDeadLetter
from mrwbus.service import senders
from mrwbus.service.actor import MonitorActor, decide, monitor_actors
from mrwbus.service.answers import handle_control
from mrwbus.service.event_feed import EventFeed
from mrwbus.service.inputs import Input, parse_control, reply_id, report_requests
from mrwbus.service.leadership import wait_for_leadership
from mrwbus.service.outbox import Outbox
from mrwbus.service.persistence import StateJournal
from mrwbus.service.redelivery import left_to_redelivery, unless_the_journal_failed
from mrwbus.service.replay import replay_for
from mrwbus.telemetry.exposition import Metrics

__all__ = ["Counters", "Health", "NotConnected", "Service"]

log = logging.getLogger(__name__)

JOURNAL_CLOSE_WAIT = 0.5
"""Seconds a stop waits for the journal's last lazy records."""

RECENT_HISTORY = 2_000
_UNRECORDED = {ControlVerb.STATUS, ControlVerb.PING}
"""Requests that change nothing and tell nothing about the cluster: not in the history."""


class Service:
    def __init__(self, config: ClusterConfig, settings: ServiceSettings) -> None:
        self.config = config
        self.settings = settings
        self.cluster = ClusterState.for_config(config)
        """Replaced each time this replica becomes active: rebuilt from the journal."""
        self.index = MonitorIndex(config)
        self.actors: dict[str, MonitorActor] = {}
        self.journal: StateJournal | None = None
        self.session = SessionRunner(
            settings.amqp_url,
            name="mrwbus-service",
            prefetch=settings.prefetch,
            on_return_raises=True,
        )
        self.health = self.session.health
        self.counters = Counters()
        self.metrics = Metrics()
        self.queues = QueueWatcher(
            config.servers,
            settings.amqp_url,
            management_url=settings.management_url,
            interval=settings.queue_read_interval,
        )
        self.consuming = self.session.ready
        """Set while this replica consumes (it is active)."""
        self.events = EventFeed()
        """The events published, for the status page (in-process listeners)."""
        self.recent_history = RecentHistory(RECENT_HISTORY)
        """The newest history records written, for the status page's history view."""
        self.outbox: Outbox | None = None
        """Journal, publish, ack (`mrwbus.service.outbox`); rebuilt with the state on becoming active."""
        self._agent_queues: set[str] = set()
        """Servers whose agent queue this session declared (before its first command)."""
        self.alerting = forwarder_for(config.alerting, settings.amqp_url, self.counters)
        """Pushes events that need a person to Alertmanager (`alerting:`); None when off."""

    def status_report(self) -> StatusReport:
        """The cluster's status with the bus as last read and this replica's broker node
        (`mrwbus status`, the page)."""
        return status_report(self.cluster).model_copy(
            update={"bus": self.queues.latest, "service_node": self.health.node}
        )

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set; survive broker outages by starting a new session."""
        serving = self.session.run(stop, lambda session: self._session(session, stop))
        await serve_beside(self.alerting, serving, stop)  # the forwarder, when configured

    async def _session(self, session: Session, stop: asyncio.Event) -> None:
        # Agent queues are declared before a server's first command (`_publish`), not here: a
        # start-up that declared a queue per server took minutes with a thousand servers.
        service = self.config.service
        topology = await declare_service_topology(
            session.channel, (), service.dead_letter_limits(), service.history_max_age
        )
        self._agent_queues = set()
        session.use_exchanges(topology.exchanges)
        if self.alerting is not None:  # before any event is published: the forwarder misses none
            await declare_alerting(session.channel, topology.exchanges)
        if not await wait_for_leadership(session, stop, self.health, self.settings):
            return
        await self._become_active(session)
        queues = asyncio.create_task(self.queues.run(session.connection), name="queues")
        beats = asyncio.create_task(beat(session.connection), name="leader-beats")
        try:
            await self._serve(session, topology, stop)
        except JournalFailed as exc:
            # Not a broker outage: stop deciding, release the lock (the connection closes),
            # stand by; the next session leads again only with the state rebuilt.
            log.error("the journal failed (%s); stepping down to standby", exc)
            self.counters.journal_failures += 1
            self.health.last_error = str(exc)
            self.health.role = "standby"
        finally:
            await cancel_within(beats)
            await cancel_within(queues)
            if self.journal is not None:
                # Only lazy records (the fact that messages went out) can wait here: losing
                # them means a redelivery republishes the same ids. A stop does not wait long.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.journal.close(), JOURNAL_CLOSE_WAIT)

    async def _become_active(self, session: Session) -> None:
        """Rebuild the state from the journal, then make one actor per monitor."""
        connection = session.connection
        journal_channel = await connection.channel(publisher_confirms=True)
        journal, restored, _ = await StateJournal.recover(
            self.config,
            journal_channel,
            await connection.channel(),
            await connection.channel(),
            snapshot_every=self.settings.snapshot_every,
        )
        self.journal = journal
        # A failed write ends the session at once, inputs in hand left to `service.redelivery`.
        journal.writer.on_failure = lambda exc: session.end(
            JournalFailed(f"the journal failed: {exc}")
        )
        journal.writer.history.recent = self.recent_history
        self.cluster = restored.cluster
        now = utc_now()
        self.cluster.restart_clocks(now)
        self.outbox = Outbox(journal, self._publish, restored.outbox)
        self.outbox.note(history.became_active(now))
        self.actors = monitor_actors(self.cluster, self.outbox, restored.decided)
        gc.freeze()  # the rebuilt state lives long: keep the collector from walking it again

    async def _serve(self, session: Session, topology: Topology, stop: asyncio.Event) -> None:
        await self._current_outbox().flush()
        await session.consume(topology.results, unless_the_journal_failed(self._on_agent_message))
        await session.consume(topology.control, unless_the_journal_failed(self._on_control))
        # The journal may have failed while a quorum queue without its quorum held a consume.
        self._check_journal()
        await session.consume(topology.faults, self._on_fault)
        session.consuming()
        log.info("active: consuming faults from %s", redact(session.url))
        await self._ask_agents_to_report()
        await session.watch(stop, self.settings.watchdog_interval, self._tick)
        # Graceful stop: take no new faults, finish those in flight (they ack), then close.
        await session.drain(self.settings.shutdown_grace)

    def _check_journal(self) -> None:
        if self.journal is not None and self.journal.failed:
            raise JournalFailed(f"the journal failed: {self.journal.writer.failed}")

    async def _tick(self) -> None:
        self._check_journal()
        now = utc_now()
        decision = self.cluster.tick(now)
        await self._react(
            decision, [history.tick_record(decision, now)] if decision.has_messages else []
        )

    # --- inputs: one shape for faults, agents' messages and control requests -------------
    #
    # Each input is parsed (anything malformed is dead-lettered with why), judged by its
    # broker-verified sender (a refusal is an event and a dead letter), decided into a
    # `Decision` that is journaled and published, and only then acknowledged. A lost
    # session is the session runner's to handle: the broker redelivers what was not acked.

    async def _on_fault(self, message: AbstractIncomingMessage) -> None:
        received = time.monotonic()
        taken = await self._take(message, parse_fault)
        if taken is None:
            return
        fault, sender = taken
        now = utc_now()
        route = route_fault(self.config, self.index, fault, now)  # as `simulate` does
        if route.dead_letter is not None:
            await self._dead_letter(message, route.dead_letter)
            return
        self.counters.faults_by_category[fault.category.value] += 1
        matched = [self.actors[name] for name in route.monitors]
        outbox = self._current_outbox()
        outbox.note(history.fault_received(fault, sender, list(route.monitors), now))
        if route.unmatched is not None:
            self.counters.unmatched += 1
            outbox.note(
                history.fault_decision(None, fault, Decision(events=(route.unmatched,)), now)
            )
            await self._publish([], [route.unmatched])
            await message.ack()
            return
        self.counters.matched += 1
        outcomes = await decide(matched, fault)
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if any(isinstance(failure, JournalFailed) for failure in failures):
            left_to_redelivery(message, failures[0])
            return
        if failures:
            log.warning(
                "fault %s not acknowledged; it will be redelivered: %s", fault.id, failures[0]
            )
            await message.nack(requeue=True)
            return
        if any(not isinstance(outcome, BaseException) and outcome.commands for outcome in outcomes):
            self.metrics.observe_fault_to_command(time.monotonic() - received)
        await self._current_publisher().ack(message)

    async def _on_agent_message(self, message: AbstractIncomingMessage) -> None:
        taken = await self._take(message, parse_agent_message)
        if taken is None:
            return
        found, sender = taken
        now = utc_now()
        if isinstance(found, CommandResult) and (wrong := self.cluster.result_refusal(found)):
            await self._react(self.cluster.handle_result(found, now))  # its event only
            await self._dead_letter(message, wrong)
            return
        if isinstance(found, CommandResult):
            issued = self.cluster.issued.get(found.command_id)
            self.counters.result(found.server, found.outcome.value, issued)
            reaction = self.cluster.handle_result(found, now)
            record = history.result_record(found, sender, reaction, now)
        else:
            reaction = self.cluster.handle_report(found, now)
            record = history.report_record(found, sender, reaction, now)
        await self._react(reaction, [record])
        await message.ack()

    async def _on_control(self, message: AbstractIncomingMessage) -> None:
        taken = await self._take(message, parse_control)
        if taken is None:
            return
        request, sender = taken
        request = senders.named(request, sender, self.config)
        now = utc_now()
        if request.verb is ControlVerb.REPLAY:
            reply, decision = await replay_for(self.settings.amqp_url, request, now)
        else:
            reply, decision = handle_control(self.cluster, request, now, self.status_report)
        recorded = (
            []
            if request.verb in _UNRECORDED
            else [history.control_record(request, sender, decision, now)]
        )
        await self._react(decision, recorded)  # journaled before the reply says done
        await self._reply(message, reply)
        await message.ack()

    async def _take(
        self,
        message: AbstractIncomingMessage,
        parse: Callable[[bytes, str], Input],
    ) -> tuple[Input, str | None] | None:
        """The input and who sent it; None once a malformed or refused message is dealt with
        (dead-lettered; a control request's sender waits for a reply, and gets one)."""
        key = message.routing_key or ""
        replies = parse is parse_control
        try:
            found = parse(message.body, key)
        except ContractError as exc:
            if not replies:
                await self._dead_letter(message, str(exc))
                return None
            error = f"bad request: {exc}"
            await self._reply(
                message, ControlReply(id=reply_id(message.message_id), ok=False, error=error)
            )
            await self._dead_letter(message, f"bad control request: {exc}")
            return None
        sender = effective_sender(message.user_id, message.headers)
        if reason := senders.refusal(found, key, sender, self.config):
            await self._publish([], [senders.refusal_event(message, found, sender, reason)])
            if isinstance(found, ControlRequest):
                error = f"refused: {reason}"
                await self._reply(message, ControlReply(id=found.id, ok=False, error=error))
            await self._dead_letter(message, f"refused: {reason}")
            return None
        return found, sender

    async def _dead_letter(self, message: AbstractIncomingMessage, reason: str) -> None:
        publisher = self._current_publisher()
        await publisher.dead_letter(message, reason)
        self.counters.dead_lettered += 1
        self.queues.note_dead_letter(
            RecentDeadLetter(
                at=utc_now(),
                reason=reason,
                exchange=message.exchange or "",
                routing_key=message.routing_key or "",
                message_id=message.message_id,
            )
        )
        log.warning("dead-lettered message %s: %s", message.message_id or "(no id)", reason)
        await message.ack()

    async def _publish(self, commands: Sequence[RecoveryCommand], found: Sequence[Event]) -> None:
        publisher = self._current_publisher()
        for server in {command.server for command in commands} - self._agent_queues:
            # Idempotent; once per server and session, so a queue deleted by hand comes back.
            await declare_agent_queue(publisher.channel, publisher.exchanges, server)
            self._agent_queues.add(server)
        await publisher.all(commands, found)
        for command in commands:
            self.counters.command_sent(command.server, command.monitor, command.action.value)
        for event in found:
            if event.code == events.FENCE_FAILED.code and event.server:
                self.counters.fence_failures[event.server] += 1
            log_event(event)
            self.events.published(event)

    def _current_publisher(self) -> Publisher:
        return self.session.current_publisher()

    # --- agents ---------------------------------------------------------------------------

    async def _ask_agents_to_report(self) -> None:
        """After a (re)start the service learns from the agents where the groups run."""
        publisher = self._current_publisher()
        # Not mandatory: a server whose agent never ran has no queue yet (they are declared
        # before a server's first command), and its agent reports on its own.
        sending = [
            publisher.publish(COMMANDS, request.routing_key, request, mandatory=False)
            for request in report_requests(self.config, utc_now())
        ]
        await asyncio.gather(*sending)

    async def _react(self, decision: Decision, recorded: Sequence[HistoryRecord] = ()) -> None:
        """Journal (with `recorded`, the history of it), publish, then the caller acks: call
        it right after the change it reports."""
        await self._current_outbox().send(self.cluster, decision, recorded)

    def _current_outbox(self) -> Outbox:
        if self.outbox is None:
            raise NotConnected("this replica is not active")
        return self.outbox

    # --- operators ----------------------------------------------------------------------

    async def _reply(self, message: AbstractIncomingMessage, reply: ControlReply) -> None:
        if not await self._current_publisher().reply(message, reply):
            log.warning(
                "control request %s: no reply, reply_to %r is not a broker-generated queue",
                message.message_id or "(no id)",
                message.reply_to,
            )
