"""Fixtures for relay tests: the relay in this process, a fault collector, a veth pair."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from mrwbus.relay.daemon import Relay
from mrwbus.relay.registry import for_server, parse_config
from tests.integration.relay.bus import FaultCollector
from tests.integration.relay.kernel import VethPair, veth_pair


@pytest.fixture
def veth() -> Iterator[VethPair]:
    with veth_pair() as pair:
        yield pair


@pytest.fixture
async def faults(amqp_url: str) -> AsyncIterator[FaultCollector]:
    async with FaultCollector.open(amqp_url) as collector:
        yield collector


StartRelay = Callable[[str], Awaitable[Relay]]


def relay_yaml(relay_section: str, tmp_path: Path) -> str:
    """A one-server cluster whose `relay:` section is given (indented under `relay:`)."""
    body = textwrap.indent(textwrap.dedent(relay_section).strip(), "  ")
    return f"servers: {{server1: {{}}}}\nrelay:\n  spool_dir: {tmp_path / 'spool'}\n{body}\n"


@pytest.fixture
async def start_relay(amqp_url: str, tmp_path: Path) -> AsyncIterator[StartRelay]:
    """Run server1's relay in this process with the given `relay:` settings; stopped afterwards."""
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start(relay_section: str) -> Relay:
        config = parse_config(relay_yaml(relay_section, tmp_path), "test.yaml")
        relay = Relay(for_server(config.relay, "server1"), amqp_url)
        stop = asyncio.Event()
        running.append((stop, asyncio.create_task(relay.run(stop))))
        await asyncio.sleep(0.5)  # the sources read the current state before the test acts
        return relay

    yield start
    for stop, task in running:
        stop.set()
        await asyncio.wait_for(task, 10)
