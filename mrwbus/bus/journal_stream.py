"""The service's state in RabbitMQ: an append-only journal on a stream, a snapshot, a leader lock.

- `mrwbus.journal` (a stream) holds entries: lists of records (`core.records`), each with a
  sequence number, and the history records of what they decided (copied to the history stream
  after), written by `bus.journal_writer` and read back here.
- `mrwbus.snapshot` (a quorum queue of length one) holds the newest snapshot: every record as
  of sequence number N, and the stream offset of the entry that holds N. Start-up reads it and
  replays only the entries after it, so start-up time does not grow with the journal.
- `mrwbus.leader` (an exclusive queue) is the lock: the replica whose connection declared it is
  the active one; the broker deletes it when that connection dies, and a standby takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiormq
import orjson
from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue

from mrwbus.bus.publisher import PUBLISH_TIMEOUT
from mrwbus.bus.topology import (
    JOURNAL,
    SNAPSHOT,
    declare_leader_lock,
    existing_queue,
)
from mrwbus.errors import JournalFailed

Record = tuple[str, str, Any]
"""One change to the journaled state: (kind, key, value); the stream only carries it."""
Records = dict[str, dict[str, Any]]
"""A snapshot's state: kind -> key -> value."""

REPLAY_TIMEOUT = 120.0


async def try_lead(connection: AbstractConnection) -> AbstractChannel | None:
    """Take the leader lock, or return None when another replica holds it.

    The returned channel must stay open: closing it keeps the lock (it belongs to the
    connection), but a closed connection releases it."""
    channel = await connection.channel()
    try:
        await declare_leader_lock(channel)
    except aiormq.exceptions.ChannelLockedResource:
        return None
    return channel


@dataclass(frozen=True)
class Snapshot:
    seq: int
    offset: int
    records: Records


async def load_snapshot(channel: AbstractChannel) -> Snapshot | None:
    queue = await existing_queue(channel, SNAPSHOT)
    message = await queue.get(no_ack=False, fail=False)
    if message is None:
        return None
    await message.nack(requeue=True)  # leave it for the next start
    data = orjson.loads(message.body)
    return Snapshot(seq=data["seq"], offset=data["offset"], records=data["records"])


async def save_snapshot(channel: AbstractChannel, snapshot: Snapshot) -> None:
    body = orjson.dumps(
        {"seq": snapshot.seq, "offset": snapshot.offset, "records": snapshot.records},
        option=orjson.OPT_NON_STR_KEYS,
    )
    message = Message(body, content_type="application/json", delivery_mode=DeliveryMode.PERSISTENT)
    await channel.default_exchange.publish(message, routing_key=SNAPSHOT, timeout=PUBLISH_TIMEOUT)


@dataclass(frozen=True)
class Batch:
    offset: int
    first: int
    last: int
    entries: list[tuple[int, list[Record]]]
    marker: str | None
    history: list[dict[str, Any]]
    """The history records of these entries (`bus.history_stream`)."""


def _decode(message: AbstractIncomingMessage) -> Batch:
    headers = message.headers or {}
    offset = headers.get("x-stream-offset")
    assert isinstance(offset, int)
    data = orjson.loads(message.body)
    entries = [(seq, [tuple(record) for record in records]) for seq, records in data["entries"]]
    return Batch(
        offset, data["first"], data["last"], entries, data.get("marker"), data.get("history") or []
    )


async def replay(
    channel: AbstractChannel, offset: int | str, until_marker: str, apply: Callable[[Batch], None]
) -> int:
    """Read the journal from `offset` up to and including the marker; return the marker's offset."""

    def reached(batch: Batch) -> bool:
        apply(batch)
        return batch.marker == until_marker

    try:
        return (await _read_until(channel, offset, reached, 2_000, REPLAY_TIMEOUT)).offset
    except TimeoutError as exc:
        raise JournalFailed(
            f"the journal replay did not reach its marker within {REPLAY_TIMEOUT:g} s"
        ) from exc


async def entries_at(channel: AbstractChannel, offset: int, timeout: float = 30.0) -> Batch:
    """The journal message at `offset`, read once (a snapshot checks the offset it names)."""
    return await _read_until(channel, offset, lambda _: True, 1, timeout)


async def entry_from(
    channel: AbstractChannel, offset: int, seq: int, timeout: float = 30.0
) -> Batch | None:
    """The journal message holding entry `seq`, read from `offset` (where the writer counted
    it) on; None if the messages there have passed it. The stream may hold offsets of its own
    between the writer's messages (seen here: one more at each new 64 MiB segment, 190,000
    entries in), so the message may lie a little later than counted, never earlier."""

    def reached(batch: Batch) -> bool:
        return (bool(batch.entries) and batch.last >= seq) or batch.first > seq

    found = await _read_until(channel, offset, reached, 16, timeout)
    return found if found.entries and found.first <= seq <= found.last else None


async def _read_until(
    channel: AbstractChannel,
    offset: int | str,
    done: Callable[[Batch], bool],
    prefetch: int,
    timeout: float,
) -> Batch:
    """Read the journal from `offset`, each message once, until `done` says so of one: that one."""
    queue: AbstractQueue = await existing_queue(channel, JOURNAL)
    await channel.set_qos(prefetch_count=prefetch)
    found: asyncio.Future[Batch] = asyncio.get_running_loop().create_future()

    async def on_message(message: AbstractIncomingMessage) -> None:
        batch = _decode(message)
        await message.ack()
        if not found.done() and done(batch):
            found.set_result(batch)

    tag = await queue.consume(on_message, arguments={"x-stream-offset": offset})
    try:
        return await asyncio.wait_for(found, timeout)
    finally:
        with contextlib.suppress(Exception):
            await queue.cancel(tag)
