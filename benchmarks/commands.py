"""Reading the commands a contender published, as server1's agent would."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage

from mrwbus.bus.topology import declare_agent_queue, declare_exchanges


@dataclass
class Received:
    arrived: dict[str, float] = field(default_factory=dict)
    """fault id -> when its first command arrived (time.time())."""
    commands: set[str] = field(default_factory=set)
    deliveries: int = 0


class CommandReader:
    """Consumes server1's command queue for the whole phase and records arrivals."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.received = Received()
        self._connection: AbstractConnection | None = None

    async def __aenter__(self) -> CommandReader:
        self._connection = await aio_pika.connect(self.url, timeout=10)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=2000)
        exchanges = await declare_exchanges(channel)
        queue = await declare_agent_queue(channel, exchanges, "server1")
        await queue.consume(self._on_message)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        now = time.time()
        if not (message.routing_key or "").endswith(".report"):
            body = json.loads(message.body)
            self.received.deliveries += 1
            self.received.commands.add(body["id"])
            self.received.arrived.setdefault(body["fault_id"], now)
        await message.ack()

    async def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received.commands) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"only {len(self.received.commands)} of {count} commands in {timeout:g} s"
                )
            await asyncio.sleep(0.05)
