"""Tailing `mrwbus.events`: a temporary queue bound with the operator's filters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aio_pika.abc import AbstractIncomingMessage

from mrwbus.bus.connection import Urls, connect_any
from mrwbus.bus.topology import EVENTS, declare_exchanges
from mrwbus.messages import Event, EventBatch


async def watch_events(
    url: Urls,
    on_event: Callable[[Event], None],
    stop: asyncio.Event,
    *,
    kind: str | None = None,
    monitor: str | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Call `on_event` for each event until `stop` is set. The broker filters by the routing
    key `<kind>.<monitor>`; other filters are the caller's."""
    connection = await connect_any(url, "mrwbus-watch")
    try:
        channel = await connection.channel()
        exchanges = await declare_exchanges(channel)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchanges[EVENTS], routing_key=f"{kind or '*'}.{monitor or '*'}")

        async def deliver(message: AbstractIncomingMessage) -> None:
            # A batch reaches this queue once if any of its events matched the binding.
            for event in EventBatch.model_validate_json(message.body).matching(kind, monitor):
                on_event(event)

        await queue.consume(deliver, no_ack=True)
        if ready is not None:
            ready.set()
        closed = asyncio.Event()
        connection.close_callbacks.add(lambda *_: closed.set())
        await asyncio.wait(
            [asyncio.create_task(stop.wait()), asyncio.create_task(closed.wait())],
            return_when=asyncio.FIRST_COMPLETED,
        )
        if closed.is_set() and not stop.is_set():
            raise ConnectionError("the broker closed the connection")
    finally:
        await connection.close()


def format_event(event: Event) -> str:
    """One readable line: time, code, kind, where, and the sentence."""
    where = event.monitor if event.monitor != "_" else "-"
    if event.server:
        where += f"@{event.server}"
    return (
        f"{event.at:%Y-%m-%d %H:%M:%S} {event.code} {event.kind.value:<9} {where:<22} {event.text}"
    )
