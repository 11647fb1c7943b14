"""Taking over quickly: a crashed leader in a tenth of a second, a silent one in about two.

The leader lock (`mrwbus.leader`, an exclusive queue) stays the one guard: a standby leads only
once the broker has deleted the lock, which it does only when it has closed the old active
replica's connection; every frame that replica sends afterwards is dropped, so nothing it
decided can reach the journal or the agents. What this module adds is speed, in two signals:

- **the token** (`mrwbus.leader.token`): every replica consumes a quorum queue with a single
  active consumer that holds one message nobody acknowledges. When the connection of the
  consumer holding it closes (a crash, a fence), the broker hands the token to the next
  consumer at once, which then tries the lock straight away instead of at its next poll;
- **the beats** (`mrwbus.leader.beats`): the active replica publishes a transient message every
  `BEAT_INTERVAL`; once a standby heard beats and then none for `LEADER_SILENCE` seconds of
  its own running time (a standby that was itself paused starts counting again), it asks the
  broker, through the management API, to close the connection that owns the lock
  (`close_lock_owner`), and takes the lock.

Without the management API (unreachable, or its user may not close the owner's connection),
the broker notices a silent connection on its own, after two to three heartbeats.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage, AbstractQueue
from yarl import URL

from mrwbus.bus.topology import LEADER, LEADER_BEATS, LEADER_TOKEN, declare_leader_signals
from mrwbus.config.settings import connection_parameters

log = logging.getLogger(__name__)

BEAT_INTERVAL = 0.25
LEADER_SILENCE = 2.0
"""Seconds without a beat before a standby fences the active replica: eight beats missed. A
replica paused by a 1 s collection or starved of CPU misses four at most and keeps its role."""
CHECK_EVERY = 0.1
"""How often a standby looks at the beats."""
HURRY = 0.02
HURRY_FOR = 1.0
"""After the token came or a fence, the lock is tried every `HURRY` s for `HURRY_FOR` s: the
broker deletes the lock a moment after it hands the token on."""
MANAGEMENT_PORT = 15672
"""The management API's port where `MRWBUS_MANAGEMENT_URL` does not say (RabbitMQ's default)."""
_BEAT = Message(b"", delivery_mode=DeliveryMode.NOT_PERSISTENT, expiration=2)


async def beat(connection: AbstractConnection) -> None:
    """The active replica's beats, until cancelled (on a channel of their own, unconfirmed:
    a beat lost is only a beat late)."""
    channel = await connection.channel(publisher_confirms=False)
    exchange = await channel.get_exchange(LEADER_BEATS, ensure=False)
    while True:
        await exchange.publish(_BEAT, routing_key="")
        await asyncio.sleep(BEAT_INTERVAL)


class LeaderWatch:
    """A replica's ear on the leadership: the token and, while it stands by, the beats."""

    def __init__(self, silence: float = LEADER_SILENCE) -> None:
        self.silence = silence
        self.heard_at: float | None = None
        """When the last beat arrived (monotonic); None until one did."""
        self.token = asyncio.Event()
        """Set when the token arrives: whoever held it is gone; try the lock now."""
        self._awake_at = time.monotonic()
        self._hurry_until = 0.0
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._held: AbstractIncomingMessage | None = None

    async def listen(self, connection: AbstractConnection) -> None:
        """Consume the token and the beats on a channel of their own, for as long as the
        connection lives: a replica that becomes active keeps the token (unacknowledged), so
        that its end hands it on."""
        channel = await connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=1)
        beats, token = await declare_leader_signals(channel)
        if not token.declaration_result.message_count:
            # One waiting is enough (the queue keeps one): the one held, if any, is not counted.
            await channel.default_exchange.publish(
                Message(b"token", delivery_mode=DeliveryMode.PERSISTENT), routing_key=LEADER_TOKEN
            )
        self._queue = token
        self._tag = await token.consume(self._on_token)
        ears = await channel.declare_queue(exclusive=True, auto_delete=True)
        await ears.bind(beats)
        await ears.consume(self._on_beat, no_ack=True)

    async def _on_token(self, message: AbstractIncomingMessage) -> None:
        self._held = message  # never acknowledged: it goes on when this connection does
        self.token.set()

    async def _on_beat(self, _: AbstractIncomingMessage) -> None:
        self.heard_at = time.monotonic()

    async def chance(
        self, stop: asyncio.Event, poll: float, fence: Callable[[], Awaitable[object]]
    ) -> None:
        """Return when the lock is worth trying again: `poll` seconds passed, the token came,
        or the beats went silent (`fence` called first); soon after either of the last two."""
        now = time.monotonic()
        if now < self._hurry_until:
            await _unless(stop, HURRY)
            return
        if self._hurry_until:  # a hurry that did not win the lock: the token goes on
            self._hurry_until = 0.0
            await self._pass_token()
        deadline = now + poll
        while not stop.is_set() and (remaining := deadline - time.monotonic()) > 0:
            await _unless(stop, min(remaining, CHECK_EVERY), self.token)
            if self.token.is_set():
                self.token.clear()
                self._hurry_until = time.monotonic() + HURRY_FOR
                return
            if self.leader_silent(CHECK_EVERY):
                await fence()
                self.heard_at = None  # fence once; the next leader's beats arm it again
                self._hurry_until = time.monotonic() + HURRY_FOR
                return

    async def _pass_token(self) -> None:
        """Got the token but not the lock (its holder's token consumer went, not its lock):
        to the back of the line, so that the token reaches the holder and moves on when it
        goes."""
        if self._queue is None or self._tag is None or self._held is None:
            return
        await self._queue.cancel(self._tag)  # the next consumer becomes the active one
        held, self._held = self._held, None
        await held.nack(requeue=True)  # and gets the token
        self._tag = await self._queue.consume(self._on_token)

    def leader_silent(self, poll: float) -> bool:
        """Called every `poll` seconds or sooner: True once beats were heard and then none for
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


async def _unless(stop: asyncio.Event, seconds: float, other: asyncio.Event | None = None) -> None:
    """Sleep `seconds`, or less if `stop` (or `other`) is set meanwhile."""
    waits = {asyncio.ensure_future(stop.wait())}
    if other is not None:
        waits.add(asyncio.ensure_future(other.wait()))
    await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for waiting in waits:
        waiting.cancel()


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
    timeout = aiohttp.ClientTimeout(total=1.0)
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
