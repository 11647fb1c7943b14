"""Fixtures for tests against the real broker: every test gets its own vhost."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest

from mrwbus.config.loading import parse_config
from mrwbus.config.model import ClusterConfig
from mrwbus.config.settings import ServiceSettings
from mrwbus.service.service import Service
from tests.integration.broker import BusProbe, create_vhost, delete_vhost, unique_vhost, vhost_url
from tests.integration.deployment import Deployment, deployment_fixture
from tests.integration.tls_node import TlsNode, tls_node_fixture


@pytest.fixture
def amqp_url() -> Iterator[str]:
    name = unique_vhost()
    create_vhost(name)
    try:
        yield vhost_url(name)
    finally:
        delete_vhost(name)


@pytest.fixture
async def probe(amqp_url: str) -> AsyncIterator[BusProbe]:
    async with BusProbe.open(amqp_url) as bus:
        yield bus


RunningService = Callable[[str], Awaitable[Service]]


@asynccontextmanager
async def running_service(config: ClusterConfig, url: str) -> AsyncIterator[Service]:
    """The service in this process, consuming, stopped gracefully afterwards."""
    service = Service(config, ServiceSettings(amqp_url=url))
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await asyncio.wait_for(service.consuming.wait(), 15)
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.fixture
async def start_service(amqp_url: str) -> AsyncIterator[RunningService]:
    """Start the service with a YAML configuration given as text."""
    async with AsyncExitStack() as stack:

        async def start(yaml_text: str) -> Service:
            config = parse_config(textwrap.dedent(yaml_text), "test.yaml")
            return await stack.enter_async_context(running_service(config, amqp_url))

        yield start


@pytest.fixture(scope="session")
def tls_node() -> Iterator[TlsNode]:
    """A RabbitMQ node of the session's own with TLS (tests/integration/tls_node.py); stopped
    and its folder removed afterwards, whatever happened."""
    yield from tls_node_fixture()


@pytest.fixture(scope="module")
def deployment(tls_node: TlsNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Every role provisioned on the TLS node, in a vhost of the module's own
    (tests/integration/deployment.py)."""
    yield from deployment_fixture(tls_node, tmp_path_factory)


@pytest.fixture
def cpu_load() -> Iterator[None]:
    """One busy process beside the test (the machine has two cores; the test takes the other)."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        busy.kill()
        busy.wait()
