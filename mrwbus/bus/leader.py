"""A silent leader is taken over in about two seconds, not after the broker's heartbeats.

The leader lock (`mrwbus.leader`, an exclusive queue) stays the one guard: a standby leads only
once the broker has deleted the lock, which it does only when it has closed the old active
replica's connection; every frame that replica sends afterwards is dropped, so nothing it
decided can reach the journal or the agents. What this module adds is speed:

- the active replica **beats**: a transient message on the fanout `mrwbus.leader.beats` every
  `BEAT_INTERVAL` (a quarter of a second);
- a standby **listens** (`LeaderWatch`); once it heard beats and then none for `LEADER_SILENCE`
  seconds of its own running time (a standby that was itself paused starts counting again),
  it asks the broker, through the management API, to close the connection that owns the lock
  (`close_lock_owner`), and takes the lock at once.

Without the management API (unreachable, or its user may not close the owner's connection),
the broker notices the silence on its own, after two to three heartbeats.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from urllib.parse import quote

from aio_pika import DeliveryMode, ExchangeType, Message
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from yarl import URL

from mrwbus.bus.topology import LEADER
from mrwbus.config.settings import connection_parameters

log = logging.getLogger(__name__)

BEATS = "mrwbus.leader.beats"
"""The fanout exchange the active replica beats on; each standby binds a queue of its own."""
BEAT_INTERVAL = 0.25
LEADER_SILENCE = 2.0
"""Seconds without a beat before a standby fences the active replica: eight beats missed. A
replica paused by a 1 s collection or starved of CPU misses four at most and keeps its role."""
MANAGEMENT_PORT = 15672
"""The management API's port where `MRWBUS_MANAGEMENT_URL` does not say (RabbitMQ's default)."""
_BEAT = Message(b"", delivery_mode=DeliveryMode.NOT_PERSISTENT, expiration=2)


async def declare_beats(channel: AbstractChannel) -> None:
    await channel.declare_exchange(BEATS, ExchangeType.FANOUT, durable=True)


async def beat(connection: AbstractConnection) -> None:
    """The active replica's beats, until cancelled (on a channel of their own, unconfirmed:
    a beat lost is only a beat late)."""
    channel = await connection.channel(publisher_confirms=False)
    exchange = await channel.declare_exchange(BEATS, ExchangeType.FANOUT, durable=True)
    while True:
        await exchange.publish(_BEAT, routing_key="")
        await asyncio.sleep(BEAT_INTERVAL)


class LeaderWatch:
    """A standby's ear on the active replica's beats."""

    def __init__(self, silence: float = LEADER_SILENCE) -> None:
        self.silence = silence
        self.heard_at: float | None = None
        """When the last beat arrived (monotonic); None until one did."""
        self._awake_at = time.monotonic()

    async def listen(self, connection: AbstractConnection) -> AbstractChannel:
        """Start listening on a channel of its own; close it to stop."""
        channel = await connection.channel(publisher_confirms=False)
        exchange = await channel.declare_exchange(BEATS, ExchangeType.FANOUT, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange)
        await queue.consume(self._on_beat, no_ack=True)
        return channel

    async def _on_beat(self, _: AbstractIncomingMessage) -> None:
        self.heard_at = time.monotonic()

    def leader_silent(self, poll: float) -> bool:
        """Called every `poll` seconds: True once beats were heard and then none for
        `silence` seconds while this standby itself ran. A standby that woke late (paused,
        starved) cannot tell a silent leader from its own sleep: it starts counting again."""
        now = time.monotonic()
        paused = now - self._awake_at > poll + BEAT_INTERVAL
        self._awake_at = now
        if self.heard_at is None:
            return False
        if paused:
            self.heard_at = max(self.heard_at, now)
            return False
        return now - self.heard_at >= self.silence


def management_base(management_url: str | None, amqp_url: str) -> tuple[str, dict[str, str], str]:
    """The management API's base URL, the credentials to ask with (the management URL's own,
    else the AMQP URL's) and the vhost; without `management_url`, the AMQP host on port 15672."""
    amqp = connection_parameters(amqp_url).url
    management = (
        URL(management_url)
        if management_url
        else URL.build(scheme="http", host=amqp.host or "localhost", port=MANAGEMENT_PORT)
    )
    user = management.user or amqp.user or "guest"
    password = management.password or amqp.password or "guest"
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    base = str(management.with_user(None).with_password(None).with_query(None)).rstrip("/")
    if not base.endswith("/api"):
        base += "/api"
    return base, {"Authorization": f"Basic {token}"}, amqp.path[1:] or "/"


async def close_lock_owner(management_url: str | None, amqp_url: str) -> str | None:
    """Ask the broker to close the connection that holds the leader lock; the connection's
    name once asked, None if the API could not tell or refused (the heartbeats still will)."""
    import aiohttp  # only here: a service that never fences does not import it

    base, auth, vhost = management_base(management_url, amqp_url)
    timeout = aiohttp.ClientTimeout(total=0.5)
    headers = {**auth, "X-Reason": "mrwbus: the active replica went silent; a standby takes over"}
    try:
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as http:
            async with http.get(f"{base}/queues/{quote(vhost, safe='')}/{LEADER}") as response:
                response.raise_for_status()
                owner = (await response.json()).get("owner_pid_details") or {}
            name = owner.get("name")
            if not isinstance(name, str):
                return None
            async with http.delete(f"{base}/connections/{quote(name, safe='')}") as response:
                response.raise_for_status()
    except (aiohttp.ClientError, TimeoutError, ValueError, AttributeError) as exc:
        log.warning("could not close the silent leader's connection: %s", exc or type(exc))
        return None
    return name
