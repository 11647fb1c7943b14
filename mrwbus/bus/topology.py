"""The one place that names and declares exchanges, queues and bindings.

Input queues are quorum queues: replicated on a RabbitMQ cluster, with a delivery limit so a
message that keeps failing is dead-lettered instead of looping forever. The faults queue takes
a single active consumer, so several service replicas run as one active and the rest standby.
Quorum queues and the journal stream are declared with `settings.replicas()` copies (3 by
default; RabbitMQ takes every node of a smaller cluster).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, AbstractQueue
from aiormq.exceptions import ChannelNotFoundEntity
from pamqp.common import FieldTable

from mrwbus.config.model import DEFAULT_DEAD_LIMITS, DeadLetterLimits
from mrwbus.config.settings import replicas

FAULTS = "mrwbus.faults"
COMMANDS = "mrwbus.commands"
EVENTS = "mrwbus.events"
RESULTS = "mrwbus.results"
DEAD = "mrwbus.dead"
CONTROL = "mrwbus.control"
SERVICE_RESULTS = "mrwbus.service.results"
"""The service's queue of agents' results and reports."""

JOURNAL = "mrwbus.journal"
"""The service's journal: a stream of entries (see `bus.journal_stream`)."""
SNAPSHOT = "mrwbus.snapshot"
"""The newest snapshot of the service's state: a quorum queue of length one."""
HISTORY = "mrwbus.history"
"""What happened, for people and `what-if`: a stream of records (see `bus.history_stream`)."""
HISTORY_INDEX = "mrwbus.history.index"
"""Which faults each stretch of the history holds, and when: a small stream that finds one."""
DEFAULT_HISTORY_MAX_AGE = timedelta(days=90)
LEADER = "mrwbus.leader"
"""The leader lock: an exclusive queue, held by the active replica's connection."""
LEADER_BEATS = "mrwbus.leader.beats"
"""A fanout exchange: the active replica's beats, heard by the standbys (`bus.leader`)."""
LEADER_TOKEN = "mrwbus.leader.token"
"""A quorum queue with a single active consumer holding one message that nobody acks: when
the consumer holding it goes, the broker hands it to the next one at once, which tells a
standby that the lock is free without polling (`bus.leader`)."""
ALERTING = "mrwbus.alerting"
"""The events that may fire or resolve an alert, waiting for the Alertmanager forwarder
(`mrwbus.alerting`); declared only while `alerting.alertmanager_url` is set."""
ALERTING_MAX_LENGTH = 100_000
"""Beyond this (Alertmanager down for days) the oldest go to `mrwbus.dead`, not the disk."""


def journal_arguments() -> FieldTable:
    return {
        "x-queue-type": "stream",
        "x-max-length-bytes": 2 * 1024**3,
        "x-stream-max-segment-size-bytes": 64 * 1024**2,
        "x-initial-cluster-size": replicas(),
    }


def history_arguments(max_age: timedelta) -> FieldTable:
    """A stream kept by age (whole segments older than `max_age` are dropped), replicated
    like the journal."""
    return {
        "x-queue-type": "stream",
        "x-max-age": f"{max(1, int(max_age.total_seconds()))}s",
        "x-stream-max-segment-size-bytes": 64 * 1024**2,
        "x-initial-cluster-size": replicas(),
    }


def replicated_quorum() -> FieldTable:
    """A plain quorum queue with the cluster's replication factor."""
    return {"x-queue-type": "quorum", "x-quorum-initial-group-size": replicas()}


EXCHANGES = (FAULTS, COMMANDS, EVENTS, RESULTS, CONTROL)

DELIVERY_LIMIT = 5
"""Deliveries of one message before the broker dead-letters it (a poison message)."""

ERROR_HEADER = "x-mrwbus-error"
"""Why a message was dead-lettered, in one sentence."""

DEAD_AT_HEADER = "x-mrwbus-dead-at"
"""When it was dead-lettered, RFC 3339 to the microsecond (the AMQP timestamp has seconds)."""

DEAD_ID_HEADER = "x-mrwbus-dead-id"
"""A dead letter's own id (`mrwbus dead show ID`): a message id may be dead-lettered twice."""


def dead_letter_arguments(limits: DeadLetterLimits) -> FieldTable:
    """`mrwbus.dead`'s queue arguments: replicated, bounded in length and age."""
    return {
        **replicated_quorum(),
        "x-max-length": limits.max_length,
        "x-overflow": "drop-head",
        "x-message-ttl": int(limits.ttl.total_seconds() * 1000),
    }


def agent_queue(server: str) -> str:
    """The durable queue that holds a server's commands while its agent is down."""
    return f"mrwbus.agent.{server}"


def _quorum(*, single_active_consumer: bool = False) -> FieldTable:
    arguments: FieldTable = {
        **replicated_quorum(),
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": DEAD,
    }
    if single_active_consumer:
        arguments["x-single-active-consumer"] = True
    return arguments


@dataclass
class Topology:
    exchanges: dict[str, AbstractExchange]
    faults: AbstractQueue
    control: AbstractQueue
    results: AbstractQueue


async def declare_exchanges(
    channel: AbstractChannel, dead_limits: DeadLetterLimits = DEFAULT_DEAD_LIMITS
) -> dict[str, AbstractExchange]:
    """The exchanges (and the dead-letter queue): declared when missing, else only looked up.

    Declaring needs the configure permission, which only the service holds on a provisioned
    broker (`mrwbus provision` declares the topology); relays, agents and operators find it."""
    if await _exchanges_exist(channel):
        return {name: await channel.get_exchange(name, ensure=False) for name in (*EXCHANGES, DEAD)}
    exchanges = {}
    for name in EXCHANGES:
        exchanges[name] = await channel.declare_exchange(name, ExchangeType.TOPIC, durable=True)
    # Dead letters go through an exchange of their own: only the service may write to the
    # default exchange, yet agents dead-letter too.
    exchanges[DEAD] = await channel.declare_exchange(DEAD, ExchangeType.FANOUT, durable=True)
    dead = await channel.declare_queue(
        DEAD, durable=True, arguments=dead_letter_arguments(dead_limits)
    )
    await dead.bind(exchanges[DEAD])
    return exchanges


async def _exchanges_exist(channel: AbstractChannel) -> bool:
    # A passive declare of a missing exchange closes its channel: ask on a throwaway one.
    connection: AbstractConnection | None = getattr(channel, "_connection", None)
    if connection is None:
        return False
    probe = await connection.channel(publisher_confirms=False)
    try:
        for name in (*EXCHANGES, DEAD):
            await probe.declare_exchange(name, passive=True)
        await probe.declare_queue(DEAD, passive=True)
    except ChannelNotFoundEntity:
        return False
    finally:
        if not probe.is_closed:
            await probe.close()
    return True


async def declare_agent_queue(
    channel: AbstractChannel, exchanges: dict[str, AbstractExchange], server: str
) -> AbstractQueue:
    # One active consumer: a second agent started for the same server by mistake stands by
    # instead of splitting the server's commands with the first.
    queue = await channel.declare_queue(
        agent_queue(server), durable=True, arguments=_quorum(single_active_consumer=True)
    )
    await queue.bind(exchanges[COMMANDS], routing_key=f"{server}.#")
    return queue


async def declare_service_topology(
    channel: AbstractChannel,
    servers: Iterable[str],
    dead_limits: DeadLetterLimits = DEFAULT_DEAD_LIMITS,
    history_max_age: timedelta = DEFAULT_HISTORY_MAX_AGE,
) -> Topology:
    """Everything the service uses, and the agent queues of `servers`. The service declares a
    server's agent queue before its first command instead (so start-up does not grow with the
    servers); either way no command is unroutable: it waits in its queue until the agent comes."""
    exchanges = await declare_exchanges(channel, dead_limits)
    faults = await channel.declare_queue(
        FAULTS, durable=True, arguments=_quorum(single_active_consumer=True)
    )
    await faults.bind(exchanges[FAULTS], routing_key="#")
    control = await channel.declare_queue(
        CONTROL, durable=True, arguments=_quorum(single_active_consumer=True)
    )
    await control.bind(exchanges[CONTROL], routing_key="#")
    results = await channel.declare_queue(
        SERVICE_RESULTS, durable=True, arguments=_quorum(single_active_consumer=True)
    )
    await results.bind(exchanges[RESULTS], routing_key="#")
    for server in servers:
        await declare_agent_queue(channel, exchanges, server)
    await declare_journal(channel)
    await declare_history(channel, history_max_age)
    return Topology(exchanges=exchanges, faults=faults, control=control, results=results)


async def declare_alert_queue(
    channel: AbstractChannel, exchanges: dict[str, AbstractExchange], bindings: Iterable[str]
) -> AbstractQueue:
    """The forwarder's durable queue, bound to the events by `bindings`. One active consumer
    at a time keeps the order (an alert's resolve never overtakes its firing) whatever the
    number of service replicas."""
    queue = await channel.declare_queue(
        ALERTING,
        durable=True,
        arguments={
            **_quorum(single_active_consumer=True),
            "x-max-length": ALERTING_MAX_LENGTH,
            "x-overflow": "drop-head",
        },
    )
    for key in bindings:
        await queue.bind(exchanges[EVENTS], routing_key=key)
    return queue


async def declare_journal(channel: AbstractChannel) -> None:
    """The journal stream and the snapshot queue."""
    await channel.declare_queue(JOURNAL, durable=True, arguments=journal_arguments())
    await channel.declare_queue(
        SNAPSHOT,
        durable=True,
        arguments={**replicated_quorum(), "x-max-length": 1, "x-overflow": "drop-head"},
    )


async def declare_history(channel: AbstractChannel, max_age: timedelta) -> None:
    """The history stream and its index, both kept `max_age`."""
    for name in (HISTORY, HISTORY_INDEX):
        await channel.declare_queue(name, durable=True, arguments=history_arguments(max_age))


async def declare_leader_signals(
    channel: AbstractChannel,
) -> tuple[AbstractExchange, AbstractQueue]:
    """The beats exchange and the token queue (`bus.leader`)."""
    beats = await channel.declare_exchange(LEADER_BEATS, ExchangeType.FANOUT, durable=True)
    token = await channel.declare_queue(
        LEADER_TOKEN,
        durable=True,
        arguments={
            **replicated_quorum(),
            "x-single-active-consumer": True,
            "x-max-length": 1,  # tokens waiting: one is enough
            "x-overflow": "drop-head",
        },
    )
    return beats, token


async def declare_leader_lock(channel: AbstractChannel) -> AbstractQueue:
    """Take the leader lock; raises `ChannelLockedResource` when another connection holds it."""
    return await channel.declare_queue(LEADER, exclusive=True, auto_delete=False)


async def existing_queue(channel: AbstractChannel, name: str) -> AbstractQueue:
    """A queue declared elsewhere in this module (passive: never creates it)."""
    return await channel.declare_queue(name, passive=True)
