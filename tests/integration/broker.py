"""Test helpers that talk to the real local RabbitMQ: a vhost per test, and a bus probe."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue

from mrwbus.bus.topology import COMMANDS, DEAD, EVENTS, FAULTS, RESULTS, declare_exchanges
from mrwbus.messages import (
    AgentReport,
    CommandResult,
    Event,
    EventBatch,
    FaultNotification,
    Outcome,
    RecoveryCommand,
    derived_id,
    parse_agent_message,
    utc_now,
)

BROKER_HOST = os.environ.get("MRWBUS_TEST_BROKER_HOST", "127.0.0.1")
BROKER_PORT = int(os.environ.get("MRWBUS_TEST_BROKER_PORT", "5672"))
MANAGEMENT_PORT = int(os.environ.get("MRWBUS_TEST_MANAGEMENT_PORT", "15672"))
MANAGEMENT = f"http://{BROKER_HOST}:{MANAGEMENT_PORT}/api"
_AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()


def _management(method: str, path: str, body: dict[str, Any] | None = None) -> None:
    request = urllib.request.Request(
        f"{MANAGEMENT}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": _AUTH, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


def create_vhost(name: str) -> None:
    """A fresh vhost with guest allowed everything: the management API when enabled (fast),
    else rabbitmqctl. Either way the broker is real; a missing broker fails the test."""
    try:
        _management("PUT", f"/vhosts/{name}")
        _management(
            "PUT", f"/permissions/{name}/guest", {"configure": ".*", "write": ".*", "read": ".*"}
        )
    except (urllib.error.URLError, ConnectionError):
        _rabbitmqctl("add_vhost", name)
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")


def delete_vhost(name: str) -> None:
    try:
        _management("DELETE", f"/vhosts/{name}")
    except (urllib.error.URLError, ConnectionError):
        _rabbitmqctl("delete_vhost", name)


def vhost_url(name: str) -> str:
    return f"amqp://guest:guest@{BROKER_HOST}:{BROKER_PORT}/{name}"


def unique_vhost() -> str:
    return f"mrwbus-test-{uuid.uuid4().hex[:12]}"


class BusProbe:
    """Sees the bus as a test needs: publishes faults like a relay, collects every command,
    event and dead letter the service emits, each in the order the broker delivered it."""

    def __init__(self, connection: AbstractConnection, channel: AbstractChannel) -> None:
        self.connection = connection
        self.channel = channel
        self.commands: asyncio.Queue[RecoveryCommand] = asyncio.Queue()
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.event_log: list[Event] = []
        self.report_requests: list[str] = []
        self.reports: asyncio.Queue[AgentReport] = asyncio.Queue()
        self.results: asyncio.Queue[CommandResult] = asyncio.Queue()

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator[BusProbe]:
        connection = await aio_pika.connect(url)
        try:
            channel = await connection.channel(publisher_confirms=True)
            probe = cls(connection, channel)
            await probe._listen()
            yield probe
        finally:
            await connection.close()

    async def _listen(self) -> None:
        exchanges = await declare_exchanges(self.channel)
        self.exchanges = exchanges
        commands = await self.channel.declare_queue(exclusive=True)
        await commands.bind(exchanges[COMMANDS], "#")
        events = await self.channel.declare_queue(exclusive=True)
        await events.bind(exchanges[EVENTS], "#")

        async def on_command(message: AbstractIncomingMessage) -> None:
            if (message.routing_key or "").endswith(".report"):
                self.report_requests.append(message.routing_key or "")
                return
            command = RecoveryCommand.model_validate_json(message.body)
            assert message.message_id == command.id
            assert message.routing_key == command.routing_key
            await self.commands.put(command)

        async def on_event(message: AbstractIncomingMessage) -> None:
            batch = EventBatch.model_validate_json(message.body)
            assert message.message_id == batch.id
            assert message.routing_key == batch.routing_key
            assert "BCC" not in (message.headers or {})  # the broker strips it
            for event in batch.events:
                self.event_log.append(event)
                await self.events.put(event)

        results = await self.channel.declare_queue(exclusive=True)
        await results.bind(exchanges[RESULTS], "#")

        async def on_result(message: AbstractIncomingMessage) -> None:
            found = parse_agent_message(message.body, message.routing_key or "")
            if isinstance(found, AgentReport):
                await self.reports.put(found)
            else:
                await self.results.put(found)

        await commands.consume(on_command, no_ack=True)
        await events.consume(on_event, no_ack=True)
        await results.consume(on_result, no_ack=True)

    async def publish(self, fault: FaultNotification) -> None:
        await self.publish_raw(fault.to_body(), fault.routing_key, message_id=fault.id)

    async def publish_raw(self, body: bytes, routing_key: str, **properties: Any) -> None:
        message = aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            **properties,
        )
        await self.exchanges[FAULTS].publish(message, routing_key)

    async def publish_command(self, command: RecoveryCommand) -> None:
        """Publish a command as the service would, straight to its server's agent."""
        message = aio_pika.Message(
            command.to_body(), content_type="application/json", message_id=command.id
        )
        await self.exchanges[COMMANDS].publish(message, command.routing_key)

    async def answer(
        self, command: RecoveryCommand, outcome: Outcome = Outcome.SUCCEEDED, detail: str = ""
    ) -> None:
        """Publish a result for `command` as its server's agent would."""
        result = CommandResult(
            id=derived_id("result", command.id),
            command_id=command.id,
            server=command.server,
            outcome=outcome,
            detail=detail,
            finished_at=utc_now(),
        )
        message = aio_pika.Message(
            result.to_body(), content_type="application/json", message_id=result.id
        )
        await self.exchanges[RESULTS].publish(message, result.routing_key)

    async def next_commands(self, count: int, timeout: float = 10.0) -> list[RecoveryCommand]:
        return [await asyncio.wait_for(self.commands.get(), timeout) for _ in range(count)]

    async def no_more_commands(self, quiet: float = 0.5) -> None:
        """Assert nothing else arrives within `quiet` seconds."""
        try:
            extra = await asyncio.wait_for(self.commands.get(), quiet)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected command: {extra!r}")

    async def wait_event(self, code: str, timeout: float = 10.0, **fields: Any) -> Event:
        """The next event with this code (and these fields), skipping others."""

        async def find() -> Event:
            while True:
                event = await self.events.get()
                if event.code == code and all(getattr(event, k) == v for k, v in fields.items()):
                    return event

        return await asyncio.wait_for(find(), timeout)

    async def wait_reports(
        self, servers: set[str], timeout: float = 20.0
    ) -> dict[str, AgentReport]:
        """The next report of each of `servers` (agents announce themselves at start)."""
        found: dict[str, AgentReport] = {}

        async def collect() -> None:
            while not servers <= found.keys():
                report = await self.reports.get()
                found[report.server] = report

        await asyncio.wait_for(collect(), timeout)
        return found

    async def dead_queue(self) -> AbstractQueue:
        return await self.channel.declare_queue(DEAD, passive=True)

    async def dead_letters(
        self, count: int, timeout: float = 10.0
    ) -> list[AbstractIncomingMessage]:
        queue = await self.dead_queue()
        found: list[AbstractIncomingMessage] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while len(found) < count:
            message = await queue.get(no_ack=True, fail=False)
            if message is None:
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"only {len(found)} of {count} dead letters arrived")
                await asyncio.sleep(0.05)
                continue
            found.append(message)
        return found
