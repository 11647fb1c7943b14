"""What relay tests need on the bus side: a collector of faults, and a TCP proxy we control."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from mrwbus.bus.topology import FAULTS, declare_exchanges
from mrwbus.messages import FaultNotification, parse_fault


class FaultCollector:
    """Every fault published to `mrwbus.faults`, in the order the broker delivered them."""

    def __init__(self) -> None:
        self.faults: asyncio.Queue[FaultNotification] = asyncio.Queue()
        self.seen: list[FaultNotification] = []
        self.user_ids: list[str | None] = []

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator[FaultCollector]:
        collector = cls()
        connection = await aio_pika.connect(url)
        try:
            channel = await connection.channel()
            exchanges = await declare_exchanges(channel)
            queue = await channel.declare_queue(exclusive=True)
            await queue.bind(exchanges[FAULTS], "#")
            await queue.consume(collector._on_message, no_ack=True)
            yield collector
        finally:
            await connection.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        fault = parse_fault(message.body, message.routing_key or "")
        assert message.message_id == fault.id
        self.seen.append(fault)
        self.user_ids.append(message.user_id)
        await self.faults.put(fault)

    async def next(self, timeout: float = 10.0) -> FaultNotification:
        return await asyncio.wait_for(self.faults.get(), timeout)

    async def nothing_more(self, quiet: float = 1.0) -> None:
        with contextlib.suppress(TimeoutError):
            extra = await asyncio.wait_for(self.faults.get(), quiet)
            raise AssertionError(f"unexpected fault: {extra!r}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TcpProxy:
    """Forwards 127.0.0.1:`port` to the broker while started; nothing listens there otherwise."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port = port
        self.target = target
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.create_task(_pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        sink.close()
