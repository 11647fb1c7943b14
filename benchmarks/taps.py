"""Watching a failover hop by hop: queues of the benchmark's own on the commands, results and
events exchanges, each message stamped with `time.perf_counter()` as it arrives.

Both contenders publish the same messages (commands with a step, results, the MRW-320 event),
so the same tap times both; each stamp is late by the tap's own delivery (a fraction of a
millisecond, the same for every hop and both contenders)."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

import aio_pika
import orjson
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage

from mrwbus.bus.topology import COMMANDS, EVENTS, RESULTS, declare_exchanges

HOPS = (
    "fault -> stop sent",
    "stop run",
    "stop result -> start sent",
    "start run",
    "start result -> done",
)
"""The five legs between the six moments of a failover."""


@dataclass
class Failover:
    group: str
    published: float = 0.0
    stop_sent: float = 0.0
    stop_done: float = 0.0
    start_sent: float = 0.0
    start_done: float = 0.0
    done: float = 0.0
    stop_id: str = ""
    start_id: str = ""

    def legs_ms(self) -> list[float]:
        moments = (
            self.published,
            self.stop_sent,
            self.stop_done,
            self.start_sent,
            self.start_done,
            self.done,
        )
        return [(b - a) * 1000 for a, b in itertools.pairwise(moments)]

    @property
    def total_ms(self) -> float:
        return (self.done - self.published) * 1000


@dataclass
class FailoverTap:
    """Stamps every failover it hears of, by group; `finished(group)` waits for its MRW-320."""

    url: str
    by_group: dict[str, Failover] = field(default_factory=dict)
    by_command: dict[str, Failover] = field(default_factory=dict)
    reports: set[str] = field(default_factory=set)
    """Servers whose agent has reported (it consumes its queue)."""
    _waiters: dict[str, asyncio.Future[Failover]] = field(default_factory=dict)
    _connection: AbstractConnection | None = None

    async def __aenter__(self) -> FailoverTap:
        self._connection = await aio_pika.connect(self.url, timeout=10)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=1000)
        exchanges = await declare_exchanges(channel)
        # Bound to what a failover sends, not `#`: the background load's restart commands and
        # mrwbus's events for them (the bare script publishes none) would otherwise queue in
        # the tap, and its stamps would measure its own backlog.
        for exchange, keys, handler in (
            (COMMANDS, ("*.failover",), self._on_command),
            (RESULTS, ("server1.*", "server2.*"), self._on_result),
            (EVENTS, ("result.*",), self._on_event),
        ):
            queue = await channel.declare_queue(exclusive=True, auto_delete=True)
            for key in keys:
                await queue.bind(exchanges[exchange], routing_key=key)
            await queue.consume(handler, no_ack=True)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._connection is not None:
            await self._connection.close()

    def expect(self, group: str) -> Failover:
        failover = self.by_group[group] = Failover(group)
        self._waiters[group] = asyncio.get_running_loop().create_future()
        return failover

    async def finished(self, group: str, timeout: float) -> Failover:
        return await asyncio.wait_for(self._waiters[group], timeout)

    async def _on_command(self, message: AbstractIncomingMessage) -> None:
        now = time.perf_counter()
        body = orjson.loads(message.body)
        failover = self.by_group.get(body.get("group") or "")
        if failover is None or body.get("action") != "failover":
            return
        self.by_command[body["id"]] = failover
        if body.get("step") == "stop" and not failover.stop_sent:
            failover.stop_sent, failover.stop_id = now, body["id"]
        elif body.get("step") == "start" and not failover.start_sent:
            failover.start_sent, failover.start_id = now, body["id"]

    async def _on_result(self, message: AbstractIncomingMessage) -> None:
        now = time.perf_counter()
        body = orjson.loads(message.body)
        if "command_id" not in body:
            self.reports.add(body.get("server", ""))
            return
        failover = self.by_command.get(body["command_id"])
        if failover is None:
            return
        if body["command_id"] == failover.stop_id and not failover.stop_done:
            failover.stop_done = now
        elif body["command_id"] == failover.start_id and not failover.start_done:
            failover.start_done = now

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        now = time.perf_counter()
        for event in orjson.loads(message.body).get("events", []):
            if event.get("code") != "MRW-320":
                continue
            failover = self.by_group.get(event.get("group") or "")
            if failover is not None and not failover.done:
                failover.done = now
                waiter = self._waiters.get(failover.group)
                if waiter is not None and not waiter.done():
                    waiter.set_result(failover)
