"""The service: wires the matcher, the monitor actors and the bus, and owns reconnection.

One fault reads as a straight line: consume -> `parse_fault` -> `MonitorIndex.match` ->
each matched `MonitorActor` (decide, apply, publish with confirms) -> ack. A session is one
connection; when it breaks (broker restart, consumer cancelled), the service connects again,
declares the topology again and consumes again. aio-pika's robust connection is not trusted
with this (see docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiormq
from aio_pika import Message
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from pydantic import ValidationError

from mrwbus.actor import MonitorActor
from mrwbus.bus.connection import CONNECTION_ERRORS, connect_unless_stopped, redact
from mrwbus.bus.journal import declare_journal, try_lead
from mrwbus.bus.publisher import Publisher
from mrwbus.bus.queues import QueueWatcher
from mrwbus.bus.topology import COMMANDS, Topology, declare_service_topology
from mrwbus.bus_messages import RecentDeadLetter
from mrwbus.config import ClusterConfig
from mrwbus.control import handle_control
from mrwbus.core import events
from mrwbus.core.cluster import ClusterState, Reaction
from mrwbus.core.matching import MonitorIndex
from mrwbus.core.records import Published
from mrwbus.errors import ContractError
from mrwbus.logs import log_event
from mrwbus.messages import (
    CommandResult,
    ControlReply,
    ControlRequest,
    Event,
    FaultNotification,
    RecoveryCommand,
    ReportRequest,
    StatusReport,
    describe_validation_error,
    new_id,
    parse_agent_message,
    parse_fault,
    utc_now,
)
from mrwbus.metrics import Metrics
from mrwbus.persistence import StateJournal
from mrwbus.settings import ServiceSettings

log = logging.getLogger(__name__)

RECENT_EVENTS = 200
"""Events kept in memory for the status page."""

SESSION_ERRORS: tuple[type[BaseException], ...] = (
    *CONNECTION_ERRORS,
    aiormq.exceptions.AMQPChannelError,
    aiormq.exceptions.DeliveryError,
    aiormq.exceptions.PublishError,
)
"""What ends a session and starts a new one (with the state rebuilt): the broker went away,
closed a channel, refused or returned a message."""

_Handler = Callable[[AbstractIncomingMessage], Awaitable[None]]


class NotConnected(ConnectionError):
    """Raised when something must be published while no session is up."""


@dataclass
class Health:
    connected: bool = False
    consuming: bool = False
    role: str = "starting"
    """active (holds the leader lock and consumes), standby (waits for the lock), or starting."""
    outages: int = 0
    last_error: str | None = None


@dataclass
class Counters:
    faults_by_category: Counter[str] = field(default_factory=Counter)
    matched: int = 0
    unmatched: int = 0
    dead_lettered: int = 0
    commands_by_action: Counter[str] = field(default_factory=Counter)
    results_by_outcome: Counter[str] = field(default_factory=Counter)


class Service:
    def __init__(self, config: ClusterConfig, settings: ServiceSettings) -> None:
        self.config = config
        self.settings = settings
        self.cluster = ClusterState.for_config(config)
        """Replaced each time this replica becomes active: rebuilt from the journal."""
        self.index = MonitorIndex(config)
        self.actors: dict[str, MonitorActor] = {}
        self.journal: StateJournal | None = None
        self.health = Health()
        self.counters = Counters()
        self.metrics = Metrics()
        self.queues = QueueWatcher(
            config.servers,
            settings.amqp_url,
            management_url=settings.management_url,
            interval=settings.queue_read_interval,
        )
        self.consuming = asyncio.Event()
        self.recent_events: deque[Event] = deque(maxlen=RECENT_EVENTS)
        self._event_listeners: set[asyncio.Queue[Event]] = set()
        self._publisher: Publisher | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._outbox: OrderedDict[str, Published] = OrderedDict()
        """Reactions applied to the state and journaled but not yet confirmed by the broker;
        sent first when this replica becomes active, so a lost connection loses no command."""
        self._outbox_lock = asyncio.Lock()

    def listen(self) -> asyncio.Queue[Event]:
        """A queue that receives every event once the broker confirmed it; `unlisten` when done."""
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=1000)
        self._event_listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[Event]) -> None:
        self._event_listeners.discard(queue)

    def status_report(self) -> StatusReport:
        """The cluster's status with the bus as last read (`mrwbus status`, the page)."""
        return self.cluster.snapshot().model_copy(update={"bus": self.queues.latest})

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set; survive broker outages by starting a new session."""
        while not stop.is_set():
            connection = await connect_unless_stopped(
                self.settings.amqp_url, stop, name="mrwbus-service"
            )
            if connection is None:
                break
            try:
                await self._session(connection, stop)
            except SESSION_ERRORS as exc:
                self._lost(exc)
            finally:
                self._publisher = None
                self.consuming.clear()
                self.health.consuming = False
                self.health.connected = False
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.close(), 5)

    def _lost(self, exc: BaseException) -> None:
        self.health.outages += 1
        self.health.last_error = str(exc) or type(exc).__name__
        log.warning("lost the broker session (%s); reconnecting", self.health.last_error)

    async def _session(self, connection: AbstractConnection, stop: asyncio.Event) -> None:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.set_qos(prefetch_count=self.settings.prefetch)
        topology = await declare_service_topology(channel, self.config.servers)
        await declare_journal(channel)
        self._publisher = Publisher(channel, topology.exchanges)
        self.health.connected = True
        if not await self._wait_for_leadership(connection, stop):
            return
        actor_tasks = await self._become_active(connection)
        actor_tasks.append(asyncio.create_task(self.queues.run(connection), name="queues"))
        try:
            await self._serve(connection, channel, topology, stop)
        finally:
            for task in actor_tasks:
                task.cancel()
            await asyncio.gather(*actor_tasks, return_exceptions=True)
            if self.journal is not None:
                await self.journal.close()

    async def _wait_for_leadership(
        self, connection: AbstractConnection, stop: asyncio.Event
    ) -> bool:
        """Standby until this replica holds the leader lock; False if told to stop first."""
        self.health.role = "standby"
        while not stop.is_set():
            if await try_lead(connection) is not None:
                self.health.role = "active"
                return True
            if connection.is_closed:
                raise ConnectionError("the connection closed while standing by")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.standby_poll)
        return False

    async def _become_active(self, connection: AbstractConnection) -> list[asyncio.Task[None]]:
        """Rebuild the state from the journal, then start one actor per monitor."""
        journal_channel = await connection.channel(publisher_confirms=True)
        journal, restored, _ = await StateJournal.recover(
            self.config,
            journal_channel,
            await connection.channel(),
            await connection.channel(),
            snapshot_every=self.settings.snapshot_every,
        )
        self.journal = journal
        self.cluster = restored.cluster
        self.cluster.restart_clocks(utc_now())
        self._outbox = restored.outbox
        self.actors = {
            name: MonitorActor(
                name, self.cluster, self._publish, journal, restored.decided.get(name)
            )
            for name in self.config.monitors
        }
        return [
            asyncio.create_task(actor.run(), name=f"actor:{name}")
            for name, actor in self.actors.items()
        ]

    async def _serve(
        self,
        connection: AbstractConnection,
        channel: AbstractChannel,
        topology: Topology,
        stop: asyncio.Event,
    ) -> None:
        await self._flush_outbox()
        consumers = [
            (topology.results, await topology.results.consume(self._track(self._on_agent_message))),
            (topology.control, await topology.control.consume(self._track(self._on_control))),
            (topology.faults, await topology.faults.consume(self._track(self._on_fault))),
        ]
        self.health.consuming = True
        self.consuming.set()
        log.info("active: consuming faults from %s", redact(self.settings.amqp_url))
        await self._ask_agents_to_report()

        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.watchdog_interval)
            if channel.is_closed or connection.is_closed:
                raise ConnectionError("the channel or connection closed")
            if not await _has_consumers(channel, *(tag for _, tag in consumers)):
                # The broker cancelled a consumer (queue deleted, leader moved): start over.
                raise ConnectionError("the broker cancelled a consumer")
            if self.journal is not None and self.journal.failed:
                raise ConnectionError(f"the journal failed: {self.journal.writer.failed}")
            await self._react(self.cluster.tick(utc_now()))

        # Graceful stop: take no new faults, finish those in flight (they ack), then close.
        self.health.consuming = False
        for queue, tag in consumers:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=self.settings.shutdown_grace)

    def _track(self, handler: _Handler) -> _Handler:
        async def tracked(message: AbstractIncomingMessage) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._inflight.add(task)
            try:
                await handler(message)
            finally:
                self._inflight.discard(task)

        return tracked

    # --- faults -------------------------------------------------------------------------

    async def _on_fault(self, message: AbstractIncomingMessage) -> None:
        received = time.monotonic()
        try:
            try:
                fault = parse_fault(message.body, message.routing_key or "")
            except ContractError as exc:
                await self._dead_letter(message, str(exc))
                return
            if fault.server not in self.config.servers:
                # Kept, not dropped: once the server is configured, `mrwbus dead replay`.
                await self._dead_letter(
                    message, f"server {fault.server!r} is not in the configuration"
                )
                return
            self.counters.faults_by_category[fault.category.value] += 1
            futures = [
                self.actors[name].submit(fault)
                for name in self.index.match(fault.server, fault.category, fault.device)
            ]
            if not futures:
                self.counters.unmatched += 1
                await self._publish([], [_unmatched(fault)])
                await message.ack()
                return
            self.counters.matched += 1
            outcomes = await asyncio.gather(*futures, return_exceptions=True)
            failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
            if failures:
                log.warning(
                    "fault %s not acknowledged; it will be redelivered: %s", fault.id, failures[0]
                )
                await message.nack(requeue=True)
                return
            if any(
                not isinstance(outcome, BaseException) and outcome.commands for outcome in outcomes
            ):
                self.metrics.observe_fault_to_command(time.monotonic() - received)
            await message.ack()
        except CONNECTION_ERRORS as exc:
            # The session is gone; the broker redelivers the unacknowledged fault.
            log.warning("fault left unacknowledged by a lost session: %s", exc)

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
        await publisher.all(commands, found)
        for command in commands:
            self.counters.commands_by_action[command.action.value] += 1
        for event in found:
            log_event(event)
            self.recent_events.append(event)
            for listener in self._event_listeners:
                with contextlib.suppress(
                    asyncio.QueueFull
                ):  # a stalled viewer loses events, not us
                    listener.put_nowait(event)

    def _current_publisher(self) -> Publisher:
        if self._publisher is None:
            raise NotConnected("not connected to the broker")
        return self._publisher

    # --- agents ---------------------------------------------------------------------------

    async def _on_agent_message(self, message: AbstractIncomingMessage) -> None:
        try:
            try:
                found = parse_agent_message(message.body, message.routing_key or "")
            except ContractError as exc:
                await self._dead_letter(message, str(exc))
                return
            now = utc_now()
            if isinstance(found, CommandResult):
                self.counters.results_by_outcome[found.outcome.value] += 1
                reaction = self.cluster.handle_result(found, now)
            else:
                reaction = self.cluster.handle_report(found, now)
            await self._react(reaction)
            await message.ack()
        except CONNECTION_ERRORS as exc:
            log.warning("agent message left unacknowledged by a lost session: %s", exc)

    async def _ask_agents_to_report(self) -> None:
        """After a (re)start the service learns from the agents where the groups run."""
        publisher = self._current_publisher()
        now = utc_now()
        await asyncio.gather(
            *(
                publisher.publish(COMMANDS, request.routing_key, request)
                for request in (
                    ReportRequest(id=new_id(), server=server, asked_at=now)
                    for server in self.config.servers
                )
            )
        )

    async def _react(self, reaction: Reaction) -> None:
        """Journal what the state already changed, then publish its messages.

        Call it right after the change, with no await in between: the journal entry takes its
        place in the same step."""
        journal = self._current_journal()
        if not reaction.commands and not reaction.events:
            await journal.reaction(self.cluster, "", None)  # state only (a heartbeat, a move)
            return
        reaction_id = new_id()
        published = Published(reaction.commands, reaction.events)
        await journal.reaction(self.cluster, reaction_id, published)
        # Into the outbox only once journaled: nothing is published ahead of its journal entry.
        self._outbox[reaction_id] = published
        await self._flush_outbox()

    async def _flush_outbox(self) -> None:
        async with self._outbox_lock:  # in order, and each reaction once
            while self._outbox:
                reaction_id, published = next(iter(self._outbox.items()))
                await self._publish(published.commands, published.events)
                del self._outbox[reaction_id]
                self._current_journal().reaction_done(reaction_id).add_done_callback(_ignore)

    def _current_journal(self) -> StateJournal:
        if self.journal is None:
            raise NotConnected("this replica is not active")
        return self.journal

    # --- operators ----------------------------------------------------------------------

    async def _on_control(self, message: AbstractIncomingMessage) -> None:
        try:
            try:
                request = ControlRequest.model_validate_json(message.body)
            except ValidationError as exc:
                await self._reply(
                    message,
                    ControlReply(
                        id=message.message_id or new_id(),
                        ok=False,
                        error=f"bad request: {describe_validation_error(exc)}",
                    ),
                )
                await message.ack()
                return
            reply, found = handle_control(self.cluster, request, utc_now())
            if reply.status is not None:
                reply = reply.model_copy(update={"status": self.status_report()})
            await self._react(Reaction(events=found))  # journaled before the reply says done
            await self._reply(message, reply)
            await message.ack()
        except CONNECTION_ERRORS as exc:
            log.warning("control request left unanswered by a lost session: %s", exc)

    async def _reply(self, message: AbstractIncomingMessage, reply: ControlReply) -> None:
        if not message.reply_to:
            return
        publisher = self._current_publisher()
        # Not mandatory: an operator who gave up waiting has no queue any more.
        await publisher.channel.default_exchange.publish(
            Message(
                reply.to_body(),
                content_type="application/json",
                correlation_id=message.correlation_id,
            ),
            routing_key=message.reply_to,
            mandatory=False,
        )


async def _has_consumers(channel: AbstractChannel, *tags: str) -> bool:
    underlay = await channel.get_underlay_channel()
    consumers: dict[str, object] = getattr(underlay, "consumers", {})
    return all(tag in consumers for tag in tags)


def _ignore(future: asyncio.Future[int]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: a lost outbox-done record only means a republish


def _unmatched(fault: FaultNotification) -> Event:
    return events.FAULT_UNMATCHED.make(
        at=utc_now(),
        cause=fault.id,
        server=fault.server,
        fault_id=fault.id,
        category=fault.category.value,
        device=fault.device,
    )
