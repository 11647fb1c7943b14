"""A relay that never gives up, a collector of commands, and a broker that restarts: the parts
of the reliability suite."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import aio_pika
import aiormq
from aio_pika.abc import AbstractIncomingMessage

from mrwbus.bus.connection import CONNECTION_ERRORS, Urls, url_list
from mrwbus.bus.publisher import json_message
from mrwbus.bus.topology import FAULTS, declare_agent_queue, declare_exchanges, declare_journal
from mrwbus.config.model import ClusterConfig
from mrwbus.core.decision import CONFIRMED
from mrwbus.messages import FaultNotification, RecoveryCommand, utc_now
from mrwbus.relay import make_fault
from mrwbus.service.persistence import StateJournal

RELIABILITY_ERRORS = (
    *CONNECTION_ERRORS,
    aiormq.exceptions.AMQPError,
    aio_pika.exceptions.AMQPException,
)


def cluster_yaml(monitors: int) -> str:
    """One group on server1 and a monitor per device `dev-<i>`: every fault gives one restart."""
    lines = [
        "servers: {server1: {server_group: a}, server2: {server_group: a}, server3: {server_group: b}}",
        "groups: {g1: {servers: [server1, server2, server3]}}",
        "service: {heartbeat_timeout: 1h}",
        "security: {verify_senders: false}",  # one broker user (guest) publishes everything
        "monitors:",
    ]
    lines += [
        f"  mrw-{i}: {{category: FC, keyword: dev-{i}, servers: {{server1: {{}}}},"
        " recovery: {action: restart, target: g1, max_restarts: 1}}"
        for i in range(monitors)
    ]
    return "\n".join(lines) + "\n"


def faults_for(monitors: int) -> list[FaultNotification]:
    return [
        make_fault("server1", "FC", f"dev-{i}", fault_id=f"fault-{i:06d}") for i in range(monitors)
    ]


def rotation(urls: Urls) -> Iterator[str]:
    """The URLs in turn, forever: a client that lost one node tries the next."""
    return itertools.cycle(url_list(urls))


async def publish_all(
    url: Urls, faults: Sequence[FaultNotification], *, rate: float | None = None
) -> int:
    """Publish every fault with a confirm, as a relay must: reconnect and publish again
    (same id) whatever was not confirmed. Returns how many reconnects it took."""
    pending = list(faults)
    reconnects = 0
    nodes = rotation(url)
    while pending:
        try:
            connection = await aio_pika.connect(next(nodes), timeout=5)
        except RELIABILITY_ERRORS:
            reconnects += 1
            await asyncio.sleep(0.5)
            continue
        try:
            channel = await connection.channel(publisher_confirms=True)
            exchanges = await declare_exchanges(channel)
            started = time.monotonic()
            while pending:
                window = pending[:50]
                await asyncio.gather(
                    *(
                        exchanges[FAULTS].publish(json_message(f), f.routing_key, mandatory=False)
                        for f in window
                    )
                )
                del pending[: len(window)]
                if rate:
                    sent = len(faults) - len(pending)
                    ahead = sent / rate - (time.monotonic() - started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
        except RELIABILITY_ERRORS:
            reconnects += 1
            await asyncio.sleep(0.5)
        finally:
            with contextlib.suppress(Exception):
                await connection.close()
    return reconnects


@dataclass
class Collected:
    deliveries: Counter[str] = field(default_factory=Counter)
    """Command id -> how often it was delivered (more than once: a republish of the same id)."""
    by_fault: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    commands: dict[str, RecoveryCommand] = field(default_factory=dict)
    first_at: dict[str, float] = field(default_factory=dict)

    @property
    def wire_duplicates(self) -> int:
        return sum(count - 1 for count in self.deliveries.values())


async def collect_commands(
    url: Urls,
    server: str,
    expected: int,
    *,
    quiet: float = 3.0,
    timeout: float = 300.0,
    into: Collected | None = None,
) -> Collected:
    """Read the server's command queue (as its agent would) until `expected` distinct commands
    arrived and then nothing for `quiet` seconds; reconnect through broker outages."""
    found = into if into is not None else Collected()
    deadline = time.monotonic() + timeout
    last_new = time.monotonic()
    nodes = rotation(url)
    while True:
        try:
            connection = await aio_pika.connect(next(nodes), timeout=5)
        except RELIABILITY_ERRORS:
            await asyncio.sleep(0.5)
            continue
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=500)
            exchanges = await declare_exchanges(channel)
            queue = await declare_agent_queue(channel, exchanges, server)

            async def on_message(message: AbstractIncomingMessage) -> None:
                nonlocal last_new
                if not (message.routing_key or "").endswith(".report"):
                    command = RecoveryCommand.model_validate_json(message.body)
                    if command.id not in found.deliveries:
                        last_new = time.monotonic()
                        found.first_at[command.id] = time.monotonic()
                    found.deliveries[command.id] += 1
                    found.by_fault[command.fault_id].add(command.id)
                    found.commands[command.id] = command
                await message.ack()

            await queue.consume(on_message)
            while not (connection.is_closed or channel.is_closed):
                await asyncio.sleep(0.2)
                idle = time.monotonic() - last_new
                if len(found.deliveries) >= expected and idle >= quiet:
                    return found
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"only {len(found.deliveries)} of {expected} commands within {timeout:g} s"
                    )
        except RELIABILITY_ERRORS:
            await asyncio.sleep(0.5)
        finally:
            with contextlib.suppress(Exception):
                await connection.close()


def check_exactly_once(found: Collected, faults: Sequence[FaultNotification]) -> None:
    """Every fault decided once: one command id each, none extra, none missing."""
    missing = [f.id for f in faults if f.id not in found.by_fault]
    doubled = {fault: ids for fault, ids in found.by_fault.items() if len(ids) != 1}
    assert not missing, f"{len(missing)} faults gave no command, e.g. {missing[:5]}"
    assert not doubled, (
        f"{len(doubled)} faults gave more than one command, e.g. {list(doubled.items())[:3]}"
    )
    assert len(found.deliveries) == len(faults)


async def restart_broker(down_for: float = 2.0) -> None:
    """`rabbitmqctl stop_app`, a pause, `start_app`: every connection is dropped."""
    await asyncio.to_thread(_rabbitmqctl, "stop_app")
    await asyncio.sleep(down_for)
    await asyncio.to_thread(_rabbitmqctl, "start_app")
    await asyncio.to_thread(_rabbitmqctl, "await_startup")


def _rabbitmqctl(*args: str) -> None:
    # MRWBUS_TEST_RABBITMQ_NODE: the node the tests use when it is not the machine's own broker
    # (with MRWBUS_TEST_BROKER_PORT), so that restarting it disturbs nobody else.
    node = os.environ.get("MRWBUS_TEST_RABBITMQ_NODE")
    where = ["-n", node] if node else []
    subprocess.run(["rabbitmqctl", *where, *args], check=True, capture_output=True, timeout=120)


def bad_inputs(count: int, seed: int = 7) -> list[tuple[bytes, str, str]]:
    """`count` generated bodies that break the contract, each with its routing key and the
    words its dead-letter reason must contain: not JSON, invalid UTF-8, wrong types, missing
    fields, unknown categories, oversized (a few: they are big), routing keys that lie."""
    import json
    import random

    rng = random.Random(seed)
    good = {
        "id": "x",
        "server": "server1",
        "category": "FC",
        "device": "dev-0",
        "occurred_at": "2026-11-25T00:00:00Z",
    }
    made: list[tuple[bytes, str, str]] = []
    for index in range(count):
        kind = index % 10
        body = dict(good, id=f"bad-{index}")
        if kind == 0:
            made.append(
                (
                    b"<" + bytes(rng.choice(b"abc{}[],:") for _ in range(rng.randint(1, 60))),
                    "server1.fc",
                    "not JSON",
                )
            )
        elif kind == 1:
            made.append(
                (
                    b'{"id": "\xff\xfe' + bytes([rng.randint(0x80, 0xFF)]) + b'"}',
                    "server1.fc",
                    "UTF-8",
                )
            )
        elif kind == 2:
            field_name = rng.choice(["id", "server", "device", "occurred_at"])
            body[field_name] = rng.choice([42, [1, 2], {"a": 1}, None, True])
            made.append((json.dumps(body).encode(), "server1.fc", "schema"))
        elif kind == 3:
            del body[rng.choice(["id", "server", "category", "device", "occurred_at"])]
            made.append((json.dumps(body).encode(), "server1.fc", "schema"))
        elif kind == 4:
            body["category"] = rng.choice(["USB", "nic", "HA/XX", "", "FC "])
            made.append((json.dumps(body).encode(), "server1.fc", "schema"))
        elif kind == 5 and index % 100 == 5:
            made.append((b'{"pad": "' + b"x" * 70_000 + b'"}', "server1.fc", "at most 65536"))
        elif kind == 6:
            made.append(
                (
                    json.dumps(body).encode(),
                    rng.choice(["server2.fc", "server1.nic", "x", ""]),
                    "routing key",
                )
            )
        elif kind == 7:
            made.append((json.dumps([body]).encode(), "server1.fc", "JSON object"))
        elif kind == 8:
            body["surprise"] = "field"
            made.append((json.dumps(body).encode(), "server1.fc", "schema"))
        else:
            body["device"] = "d" * 1100
            made.append((json.dumps(body).encode(), "server1.fc", "schema"))
    return made


async def write_long_journal(
    url: str, config: ClusterConfig, entries: int, monitors: int, *, snapshot_every: int
) -> None:
    """`entries` decided faults on `monitors` monitors (`mrw-<i>` on server1), journaled through
    the service's own journal code, snapshots included, as `mrwbus run` would have left them."""
    connection = await aio_pika.connect(url)
    channel = await connection.channel(publisher_confirms=True)
    await declare_journal(channel)
    journal, restored, _ = await StateJournal.recover(
        config,
        channel,
        await connection.channel(),
        await connection.channel(),
        snapshot_every=snapshot_every,
    )
    cluster = restored.cluster
    pending = []
    for index in range(entries):
        monitor = f"mrw-{index % monitors}"
        cluster.monitors[(monitor, "server1")] = cluster.state_of(monitor, "server1").record_fault(
            f"f-{index}", f"dev-{index % monitors}", "", utc_now()
        )
        cluster.dirty.add((monitor, "server1"))
        pending.append(journal.decision(cluster, monitor, f"f-{index}", CONFIRMED, shared=False))
        if len(pending) >= 5_000:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    await journal.settle()
    await journal.close()
    await connection.close()
