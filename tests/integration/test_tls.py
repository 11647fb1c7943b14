"""TLS for every role, on the session's own RabbitMQ node (tests/integration/tls_node.py): the
service, an agent, a relay's publish (one-shot and the relay daemon's link) and the CLI work
over amqps:// with the test's CA, a client certificate and a password file; a plain connection to the TLS port, a certificate from another CA and a
client that trusts another CA are refused."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aio_pika.abc import AbstractIncomingMessage

from mrwbus.bus.connection import connect
from mrwbus.bus.health import Health
from mrwbus.bus.topology import FAULTS, declare_service_topology
from mrwbus.config.loading import parse_config
from mrwbus.errors import BrokerUnavailable
from mrwbus.relay import make_fault, publish_fault
from mrwbus.relay.delivery import FaultLink, SessionLinks
from tests.integration.broker import unique_vhost
from tests.integration.conftest import running_service
from tests.integration.test_agent_runtime import Calls, make_agent, running
from tests.integration.tls_node import TlsNode

CLUSTER = """
servers: {server1: {}, server2: {}}
security: {verify_senders: false}
groups:
  failover1: {servers: [server1, server2], resources: [app1]}
monitors:
  mrw1: {category: NIC, keyword: eth0, recovery: {action: restart, target: failover1}}
"""


@pytest.fixture
def vhost(tls_node: TlsNode) -> Iterator[str]:
    name = unique_vhost()
    tls_node.management("PUT", f"/vhosts/{name}")
    tls_node.management(
        "PUT", f"/permissions/{name}/guest", {"configure": ".*", "write": ".*", "read": ".*"}
    )
    try:
        yield name
    finally:
        tls_node.management("DELETE", f"/vhosts/{name}")


def _cli(tls_node: TlsNode, vhost: str, *args: str) -> subprocess.CompletedProcess[str]:
    options = [
        "--amqp-url",
        f"amqps://guest@localhost:{tls_node.tls_port}/{vhost}",
        "--password-file",
        str(tls_node.dir / "guest-password"),
        "--tls-ca",
        tls_node.cert("ca.pem"),
        "--tls-cert",
        tls_node.cert("client.pem"),
        "--tls-key",
        tls_node.cert("client.key"),
    ]
    return subprocess.run(
        [sys.executable, "-m", "mrwbus", args[0], *options, *args[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_service_agent_relay_and_cli_work_over_tls(
    tls_node: TlsNode, vhost: str, tmp_path: Path
) -> None:
    url = tls_node.url(vhost)
    assert url.startswith("amqps://") and "guest:" not in url  # no password in the URL
    calls = Calls()
    config = parse_config(CLUSTER, "test.yaml")
    async with (
        running_service(config, url),
        running(make_agent(url, tmp_path, "server1", calls, initial_groups=["failover1"])),
    ):
        await publish_fault(url, make_fault("server1", "NIC", "eth0"))  # as a relay does
        notified = await asyncio.to_thread(
            _cli,
            tls_node,
            vhost,
            "notify",
            "--server",
            "server1",
            "--category",
            "NIC",
            "--device",
            "eth0",
            "--recovered",
        )
        assert notified.returncode == 0, notified.stderr
        for _ in range(100):
            if calls.seen:
                break
            await asyncio.sleep(0.1)
        assert [c.action.value for c in calls.seen] == ["restart"]  # service -> agent over TLS
        status = await asyncio.to_thread(_cli, tls_node, vhost, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert {row["server"] for row in json.loads(status.stdout)["servers"]} == {"server1", "server2"}


@pytest.mark.parametrize(
    "options",
    [
        {"scheme": "amqp"},  # plain AMQP to the TLS port
        {"client": "stranger"},  # a client certificate from another CA
        {"ca": "other-ca"},  # a client that trusts another CA: the broker's certificate fails
    ],
    ids=["plain", "foreign-client-cert", "foreign-ca"],
)
async def test_the_tls_port_refuses(tls_node: TlsNode, vhost: str, options: dict[str, str]) -> None:
    with pytest.raises(BrokerUnavailable):
        connection = await connect(tls_node.url(vhost, **options), attempts=1)
        await connection.close()


async def test_the_tls_port_accepts_the_test_ca(tls_node: TlsNode, vhost: str) -> None:
    connection = await connect(tls_node.url(vhost), attempts=1)
    await connection.close()


async def test_the_relay_daemon_delivers_over_tls_with_a_password_file(
    tls_node: TlsNode, vhost: str
) -> None:
    url = tls_node.url(vhost)
    connection = await connect(url, attempts=1)
    try:
        channel = await connection.channel()
        await declare_service_topology(channel, ["server1"])
        fault = make_fault("server1", "NIC", "eth0")
        stop = asyncio.Event()

        async def deliver(link: FaultLink) -> None:
            await link.publish(fault)  # returns once the broker confirmed it
            stop.set()

        links = SessionLinks(url, "server1", set_user_id=True, health=Health())
        await asyncio.wait_for(links.run(stop, deliver), 30)
        queue = await channel.get_queue(FAULTS, ensure=False)
        received: asyncio.Future[AbstractIncomingMessage] = (
            asyncio.get_running_loop().create_future()
        )

        async def on_message(message: AbstractIncomingMessage) -> None:
            if not received.done():
                received.set_result(message)

        # A consumer, not basic.get: the faults queue has a single active consumer.
        await queue.consume(on_message, no_ack=True)
        message = await asyncio.wait_for(received, 10)
        assert (message.message_id, message.user_id) == (fault.id, "guest")
    finally:
        await connection.close()
