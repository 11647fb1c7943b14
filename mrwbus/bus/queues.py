"""Reading the bus's queues: how many messages wait where, and who consumes them.

Two sources, whichever the service's own credentials allow:
- passive declares over AMQP: ready messages and consumers of every queue. RabbitMQ checks no
  permission for a passive declare, so this works for the least-privileged service user.
- the management API (`MRWBUS_MANAGEMENT_URL`), when set and reachable with the service's
  credentials (a user tagged `monitoring` or `management`): unacknowledged messages too, and the
  oldest message's age where the queue reports `head_message_timestamp`.
An unreachable management API is not an error: the AMQP figures are still shown.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection
from yarl import URL

from mrwbus.bus.connection import Urls, url_list
from mrwbus.bus.topology import CONTROL, DEAD, FAULTS, SERVICE_RESULTS, agent_queue
from mrwbus.errors import ManagementUnreachable
from mrwbus.messages import utc_now
from mrwbus.messages.bus import BusReport, QueueDepth, QueueRole, RecentDeadLetter

log = logging.getLogger(__name__)

READ_INTERVAL = 2.0
"""Seconds between two readings of the queues."""

RECENT_DEAD_LETTERS = 20
"""Dead letters of this service kept for the status page."""


def watched_queues(servers: Iterable[str]) -> list[tuple[str, QueueRole, str | None]]:
    """(queue, role, server) of every queue an operator watches, in the order shown."""
    found: list[tuple[str, QueueRole, str | None]] = [(FAULTS, "faults", None)]
    found += [(agent_queue(server), "agent", server) for server in servers]
    found += [
        (SERVICE_RESULTS, "results", None),
        (CONTROL, "control", None),
        (DEAD, "dead", None),
    ]
    return found


def mark_stalled(depths: list[QueueDepth], baseline: dict[str, int]) -> list[QueueDepth]:
    """Flag agent queues that grew while nobody consumed them.

    `baseline` (updated in place) holds each agent queue's depth at the last reading where its
    agent consumed (or, for an agent not seen consuming since the service started, its lowest
    depth since): a queue at that depth or below is only waiting, above it commands pile up for
    an agent that is silent. Taken while consuming, so commands that arrive between two readings
    right after the agent stopped still count as growth."""
    marked = []
    for depth in depths:
        if depth.role != "agent":
            marked.append(depth)
            continue
        if depth.consumers > 0:
            baseline[depth.queue] = depth.ready
            marked.append(depth)
            continue
        start = baseline.setdefault(depth.queue, depth.ready)
        baseline[depth.queue] = min(start, depth.ready)  # drained by hand: grow from there
        marked.append(depth.model_copy(update={"stalled": depth.ready > baseline[depth.queue]}))
    return marked


async def read_by_declare(
    open_channel: Callable[[], Awaitable[AbstractChannel]],
    queues: list[tuple[str, QueueRole, str | None]],
) -> list[QueueDepth]:
    """Ready messages and consumers by passive declares. A missing queue closes the channel it
    was asked on (it is then left out and `open_channel` gives another)."""
    found: list[QueueDepth] = []
    for name, role, server in queues:
        channel = await open_channel()
        try:
            declared = await channel.declare_queue(name, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            continue
        result = declared.declaration_result
        found.append(
            QueueDepth(
                queue=name,
                role=role,
                server=server,
                ready=result.message_count or 0,
                consumers=result.consumer_count or 0,
            )
        )
    return found


def management_endpoint(management_url: str, amqp_url: str) -> tuple[str, dict[str, str]]:
    """The API's queue listing for the AMQP URL's vhost, and the credentials to ask with: the
    management URL's own, else the service's AMQP ones."""
    amqp = URL(amqp_url)
    management = URL(management_url)
    vhost = amqp.path[1:] or "/"
    user = management.user or amqp.user or "guest"
    password = management.password or amqp.password or "guest"
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    auth = {"Authorization": f"Basic {token}"}
    base = str(management.with_user(None).with_password(None)).rstrip("/")
    if not base.endswith("/api"):
        base += "/api"
    return f"{base}/queues/{quote(vhost, safe='')}", auth


def merge_management(
    depths: list[QueueDepth], listing: Iterable[Mapping[str, Any]], now: datetime
) -> list[QueueDepth]:
    """The AMQP figures completed with the management API's (its counts are a few seconds
    old, so only what AMQP cannot say is taken from it)."""
    by_name = {str(row.get("name")): row for row in listing}
    merged = []
    for depth in depths:
        row = by_name.get(depth.queue)
        if row is None:
            merged.append(depth)
            continue
        update: dict[str, Any] = {}
        unacked = row.get("messages_unacknowledged")
        if isinstance(unacked, int):
            update["unacked"] = unacked
        head = row.get("head_message_timestamp")
        if isinstance(head, int | float) and depth.ready:
            update["oldest_age_seconds"] = max(0.0, now.timestamp() - float(head))
        merged.append(depth.model_copy(update=update))
    return merged


async def read_management(url: str, auth: dict[str, str]) -> list[dict[str, Any]]:
    # Imported here, where the management API is asked: a service without it starts without
    # aiohttp's import (a tenth of a second).
    import aiohttp

    columns = "name,messages_ready,messages_unacknowledged,consumers,head_message_timestamp"
    timeout = aiohttp.ClientTimeout(total=5)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout, headers=auth) as session,
            session.get(url, params={"columns": columns}) as response,
        ):
            response.raise_for_status()
            listing = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise ManagementUnreachable(str(exc) or type(exc).__name__) from exc
    return [row for row in listing if isinstance(row, dict)]


class QueueWatcher:
    """Reads the queues every `interval` seconds while the service is active; keeps the last
    reading (`latest`) and the last dead letters this service made."""

    def __init__(
        self,
        servers: Iterable[str],
        amqp_url: Urls,
        *,
        management_url: str | None = None,
        interval: float = READ_INTERVAL,
    ) -> None:
        self.queues = watched_queues(servers)
        self.interval = interval
        # A cluster's nodes share vhost and users: the first URL says which to ask about.
        first = url_list(amqp_url)[0]
        self.management = management_endpoint(management_url, first) if management_url else None
        self.latest: BusReport | None = None
        self.recent: deque[RecentDeadLetter] = deque(maxlen=RECENT_DEAD_LETTERS)
        self._baseline: dict[str, int] = {}
        self._management_failing = False

    def note_dead_letter(self, letter: RecentDeadLetter) -> None:
        self.recent.append(letter)

    async def run(self, connection: AbstractConnection) -> None:
        """Read until cancelled; a failed reading is logged and tried again.

        One channel for all readings, never closed here: it belongs to the session's connection
        and closes with it, so a cancelled reading never waits on a channel close."""
        channel: AbstractChannel | None = None

        async def open_channel() -> AbstractChannel:
            nonlocal channel
            if channel is None or channel.is_closed:
                channel = await connection.channel()
            return channel

        task = asyncio.current_task()
        try:
            # `cancelling()`: a cancellation a library swallowed (Python 3.11's wait_for can,
            # when its inner call finishes at the same moment) still ends the loop.
            while task is None or not task.cancelling():
                try:
                    await self.read(open_channel)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a reading is worth losing, the session is not
                    log.warning("reading the queues failed: %s", exc)
                await asyncio.sleep(self.interval)
        finally:
            self.latest = None  # no longer active: an old reading would only mislead

    async def read(self, open_channel: Callable[[], Awaitable[AbstractChannel]]) -> BusReport:
        depths = await read_by_declare(open_channel, self.queues)
        source = "amqp"
        if self.management is not None:
            try:
                listing = await read_management(*self.management)
            except ManagementUnreachable as exc:
                if not self._management_failing:
                    log.warning("management API unreachable, AMQP figures only: %s", exc)
                self._management_failing = True
            else:
                self._management_failing = False
                depths = merge_management(depths, listing, utc_now())
                source = "management"
        depths = mark_stalled(depths, self._baseline)
        dead = sum(depth.ready + (depth.unacked or 0) for depth in depths if depth.role == "dead")
        self.latest = BusReport(
            read_at=utc_now(),
            queues=depths,
            dead_letters=dead,
            recent_dead_letters=list(self.recent),
            source=source,
        )
        return self.latest
