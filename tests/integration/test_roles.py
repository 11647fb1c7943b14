"""The provisioned roles on a real RabbitMQ 3.10 node, every connection over TLS: what each user
may do, and what the broker refuses. The node is the session's own (`tls_node`), so the users,
which are broker-wide, never meet another test's; one vhost for the module, deleted after."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from aiormq.exceptions import AMQPError

from mrwbus.agent import build_reference_agent
from mrwbus.bus.connection import connect
from mrwbus.bus.publisher import Publisher, json_message
from mrwbus.bus.rpc import ask_service
from mrwbus.bus.topology import (
    COMMANDS,
    CONTROL,
    DEAD,
    FAULTS,
    RESULTS,
    agent_queue,
    declare_agent_queue,
    declare_exchanges,
)
from mrwbus.bus.watch import watch_events
from mrwbus.config import parse_config
from mrwbus.messages import ControlRequest, ControlVerb, Event, Outcome, new_id, utc_now
from mrwbus.provision import Provisioned, provision
from mrwbus.relay import make_fault, publish_fault
from mrwbus.roles import SERVICE, roles_for
from mrwbus.settings import amqp_url, connection_parameters
from tests.integration.broker import unique_vhost
from tests.integration.conftest import running_service
from tests.integration.test_agent_runtime import Calls, ResultsProbe, command, running
from tests.integration.tls_node import TlsNode

SERVERS = ["server1", "server2"]
USERS = [role.user for role in roles_for(SERVERS)]


@dataclass(frozen=True)
class Deployment:
    node: TlsNode
    vhost: str
    secrets: Path

    def url(self, user: str, *, password_file: Path | None = None, vhost: str | None = None) -> str:
        return amqp_url(
            f"amqps://{user}@localhost:{self.node.tls_port}/{self.vhost if vhost is None else vhost}",
            password_file=str(password_file or self.secrets / user),
            tls_ca=self.node.cert("ca.pem"),
            tls_cert=self.node.cert("client.pem"),
            tls_key=self.node.cert("client.key"),
        )

    @property
    def admin_url(self) -> str:
        """guest, the node's administrator (its password in a file like everyone's)."""
        return self.url("guest", password_file=self.node.dir / "guest-password", vhost="")

    @property
    def management_url(self) -> str:
        return f"https://guest@localhost:{self.node.management_port}/"

    def management(self, method: str, path: str, body: dict[str, object] | None = None) -> None:
        self.node.management(method, path, body)

    def passwords(self) -> dict[str, str]:
        return {user: (self.secrets / user).read_text().strip() for user in USERS}


def _provision(deployment: Deployment, rotate: str | None = None) -> Provisioned:
    return asyncio.run(
        provision(
            SERVERS,
            management_url=deployment.management_url,
            amqp_url=deployment.admin_url,
            vhost=deployment.vhost,
            secrets_dir=deployment.secrets,
            rotate=rotate,
        )
    )


@pytest.fixture(scope="module")
def deployment(tls_node: TlsNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = Deployment(tls_node, unique_vhost(), tmp_path_factory.mktemp("secrets"))
    try:
        _provision(deployment)
        # guest (the test's administrator) looks at the queues.
        deployment.management(
            "PUT",
            f"/permissions/{deployment.vhost}/guest",
            {"configure": ".*", "write": ".*", "read": ".*"},
        )
        yield deployment
    finally:
        for path in [f"/vhosts/{deployment.vhost}", *(f"/users/{user}" for user in USERS)]:
            with contextlib.suppress(Exception):  # never created: nothing to clean
                deployment.management("DELETE", path)


async def _queue_depth(deployment: Deployment, queue: str) -> int:
    connection = await connect(
        deployment.url("guest", password_file=deployment.node.dir / "guest-password"), attempts=1
    )
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0
    finally:
        await connection.close()


async def _refused(deployment: Deployment, user: str, action: str) -> bool:
    """Try one operation as `user`; True when the broker refuses it."""
    connection = await connect(deployment.url(user), attempts=1)
    try:
        channel = await connection.channel(publisher_confirms=True)
        try:
            await _operation(channel, action)
        except AMQPError:
            return True
        return False
    finally:
        await connection.close()


async def _ignore(message: AbstractIncomingMessage) -> None:
    pass


async def _operation(channel: aio_pika.abc.AbstractChannel, action: str) -> None:
    verb, _, argument = action.partition(" ")
    if verb == "publish":
        exchange_name, _, key = argument.partition(" ")
        exchange = (
            channel.default_exchange
            if exchange_name == "amq.default"
            else await channel.get_exchange(exchange_name, ensure=False)
        )
        await exchange.publish(aio_pika.Message(b"{}"), key, timeout=10)
    elif verb == "consume":
        queue = await channel.get_queue(argument, ensure=False)
        await queue.consume(_ignore)
    elif verb == "declare-agent-queue":
        exchanges = await declare_exchanges(channel)
        await declare_agent_queue(channel, exchanges, argument)
    elif verb == "delete-exchange":
        await channel.exchange_delete(argument)
    else:  # pragma: no cover
        raise AssertionError(action)


async def test_a_relay_publishes_faults_for_its_own_server_only(deployment: Deployment) -> None:
    url = deployment.url("relay-server1")
    before = await _queue_depth(deployment, FAULTS)
    await publish_fault(url, make_fault("server1", "NIC", "eth0"))
    assert await _queue_depth(deployment, FAULTS) == before + 1
    with pytest.raises(AMQPError):
        await publish_fault(url, make_fault("server2", "NIC", "eth0"))
    assert await _queue_depth(deployment, FAULTS) == before + 1
    assert await _refused(deployment, "relay-server1", f"publish {COMMANDS} server1.restart")
    assert await _refused(
        deployment, "relay-server1", f"publish amq.default {agent_queue('server1')}"
    )
    assert await _refused(deployment, "relay-server1", f"consume {FAULTS}")


@pytest.mark.parametrize(
    "action",
    [
        "consume mrwbus.agent.server2",
        "declare-agent-queue server2",
        f"publish {RESULTS} server2.result",
        f"publish {RESULTS} server2.report",
        f"publish {COMMANDS} server1.restart",
        f"publish {FAULTS} server1.nic",
        "publish amq.default mrwbus.agent.server1",
        f"delete-exchange {COMMANDS}",
    ],
)
async def test_an_agent_is_refused_what_is_not_its_own(deployment: Deployment, action: str) -> None:
    assert await _refused(deployment, "agent-server1", action)


@pytest.mark.parametrize(
    "action",
    [
        "declare-agent-queue server1",
        "consume mrwbus.agent.server1",
        f"publish {RESULTS} server1.result",
        f"publish {RESULTS} server1.report",
    ],
)
async def test_an_agent_does_what_it_must(deployment: Deployment, action: str) -> None:
    assert not await _refused(deployment, "agent-server1", action)


@pytest.mark.parametrize("user", ["operator", "viewer"])
@pytest.mark.parametrize(
    "action",
    [
        f"publish {COMMANDS} server1.final_action",
        "publish amq.default mrwbus.agent.server1",
        "publish amq.default mrwbus.control",
        "publish amq.default mrwbus.snapshot",
        f"publish {FAULTS} server1.nic",
        f"publish {RESULTS} server1.result",
        f"consume {CONTROL}",
        "consume mrwbus.agent.server1",
    ],
)
async def test_operators_and_viewers_cannot_command(
    deployment: Deployment, user: str, action: str
) -> None:
    assert await _refused(deployment, user, action)


@pytest.mark.parametrize(
    ("user", "verb", "refused"),
    [
        ("operator", ControlVerb.CLEAR, False),
        ("operator", ControlVerb.STATUS, False),
        ("viewer", ControlVerb.STATUS, False),
        ("viewer", ControlVerb.PING, False),
        ("viewer", ControlVerb.CLEAR, True),
        ("viewer", ControlVerb.SUSPEND, True),
        ("viewer", ControlVerb.RESUME, True),
    ],
)
async def test_the_broker_authorises_control_verbs_per_user(
    deployment: Deployment, user: str, verb: ControlVerb, refused: bool
) -> None:
    request = ControlRequest(id=new_id(), verb=verb)
    assert await _refused(deployment, user, f"publish {CONTROL} {request.routing_key}") is refused


async def test_the_service_publishes_commands_with_its_verified_user_id(
    deployment: Deployment,
) -> None:
    connection = await connect(deployment.url(SERVICE), attempts=1)
    try:
        channel = await connection.channel(publisher_confirms=True)
        publisher = Publisher(channel, await declare_exchanges(channel))
        assert publisher.user_id == SERVICE
        await publisher.command(command(server="server2"))
        queue = await channel.get_queue(agent_queue("server2"), ensure=False)
        received: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

        async def on_message(message: AbstractIncomingMessage) -> None:
            if not received.done():
                received.set_result(message.user_id)

        await queue.consume(on_message, no_ack=True)
        assert await asyncio.wait_for(received, 10) == SERVICE
    finally:
        await connection.close()


async def test_a_forged_user_id_is_refused_by_the_broker(deployment: Deployment) -> None:
    connection = await connect(deployment.url("agent-server1"), attempts=1)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(RESULTS, ensure=False)
        with pytest.raises(AMQPError):
            await exchange.publish(
                json_message(command(), user_id=SERVICE), "server1.result", timeout=10
            )
    finally:
        await connection.close()


def test_password_files_are_private_and_provisioning_again_changes_nothing(
    deployment: Deployment,
) -> None:
    for user in USERS:
        mode = stat.S_IMODE(os.stat(deployment.secrets / user).st_mode)
        assert mode == 0o600, (user, oct(mode))
    before = deployment.passwords()
    done = _provision(deployment)
    assert done.kept == tuple(role.user for role in roles_for(SERVERS))
    assert not done.created and not done.rotated
    assert deployment.passwords() == before


async def test_rotate_replaces_one_password_and_it_works(deployment: Deployment) -> None:
    before = deployment.passwords()
    await asyncio.to_thread(_provision, deployment, "relay-server2")
    after = deployment.passwords()
    assert {user for user in USERS if before[user] != after[user]} == {"relay-server2"}
    await publish_fault(deployment.url("relay-server2"), make_fault("server2", "FC", "fc0"))
    # The old password no longer logs in.
    old = deployment.secrets / "old"
    old.write_text(before["relay-server2"])
    with pytest.raises(Exception, match=r"ACCESS_REFUSED|refused|auth"):
        await connect(deployment.url("relay-server2", password_file=old), attempts=1)


def test_no_password_reaches_the_output_the_logs_or_argv(
    deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _provision(deployment, rotate="viewer")
    argv = [
        sys.executable,
        "-m",
        "mrwbus",
        "provision",
        "--config",
        str(Path(__file__).parents[2] / "config" / "cluster.yaml"),
        "--management-url",
        deployment.management_url,
        "--amqp-url",
        f"amqps://guest@localhost:{deployment.node.tls_port}/",
        "--password-file",
        str(deployment.node.dir / "guest-password"),
        "--tls-ca",
        deployment.node.cert("ca.pem"),
        "--tls-cert",
        deployment.node.cert("client.pem"),
        "--tls-key",
        deployment.node.cert("client.key"),
        "--vhost",
        deployment.vhost,
        "--secrets",
        str(deployment.secrets),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    # config/cluster.yaml has server3 too: its users are new; everyone else keeps a password.
    assert "created: relay-server3, agent-server3" in done.stdout
    USERS.extend(["relay-server3", "agent-server3"])  # cleaned up with the rest
    shown = done.stdout + done.stderr + caplog.text + " ".join(argv)
    for password in deployment.passwords().values():
        assert password not in shown


AGENT_CONFIG = """
servers: {server1: {}, server2: {}}
groups:
  failover1: {servers: [server1, server2], resources: [app1]}
monitors:
  mrw1: {category: NIC, recovery: {action: restart, target: failover1}}
agent:
  max_command_age: 1m
"""


async def test_the_agent_runs_only_the_services_commands(
    deployment: Deployment, tmp_path: Path
) -> None:
    """The reference agent as agent-server1, verifying senders (the default): a command the
    broker administrator publishes, a stale one and one for an unknown group are refused and
    dead-lettered with the reason; the handler runs only the service's good command."""
    config = parse_config(AGENT_CONFIG, "test.yaml")
    assert config.security.verify_senders
    calls = Calls()
    agent = build_reference_agent(
        config, "server1", deployment.url("agent-server1"), state_dir=tmp_path
    )
    agent.add_handler("restart", calls.succeed)
    # aiormq reads the TLS files from the query itself; the probe passes the URL as it is.
    guest = deployment.url("guest", password_file=deployment.node.dir / "guest-password")
    admin = str(connection_parameters(guest).url)
    admin += "?" + "&".join(
        f"{key}={deployment.node.cert(name)}"
        for key, name in (
            ("cafile", "ca.pem"),
            ("certfile", "client.pem"),
            ("keyfile", "client.key"),
        )
    )
    before = await _queue_depth(deployment, DEAD)
    async with (
        ResultsProbe.open(admin) as probe,
        running(agent),
    ):
        service = await connect(deployment.url(SERVICE), attempts=1)
        try:
            channel = await service.channel(publisher_confirms=True)
            publisher = Publisher(channel, await declare_exchanges(channel))
            forged = command()
            await probe.command(forged)  # the administrator: user_id absent
            stale = command(issued_at=utc_now() - timedelta(minutes=2))
            unknown = command(group="failover9")
            good = command()
            for each in (stale, unknown, good):
                await publisher.command(each)
            results = {}
            for _ in range(4):
                _, result = await probe.next_result()
                results[result.command_id] = result
        finally:
            await service.close()
    assert [c.id for c in calls.seen] == [good.id]
    assert results[good.id].outcome is Outcome.SUCCEEDED
    for refused, why in (
        (forged, "not by 'mrwbus-service'"),
        (stale, "max_command_age"),
        (unknown, "not in the configuration"),
    ):
        assert results[refused.id].outcome is Outcome.REFUSED
        assert why in results[refused.id].detail
    assert await _queue_depth(deployment, DEAD) == before + 3


SERVICE_CONFIG = """
servers: {server1: {}, server2: {}}
groups:
  failover1: {servers: [server1, server2], resources: [app1]}
monitors:
  mrw1: {category: NIC, recovery: {action: restart, target: failover1}}
"""


async def test_the_service_runs_as_its_role_and_operator_tools_as_theirs(
    deployment: Deployment,
) -> None:
    """The service with nothing but mrwbus-service's rights (journal, snapshot, leader lock,
    replies); `status` as operator and viewer, `clear` and `suspend` as operator; a viewer's `clear` refused by
    the broker; `watch` as a viewer sees the service's events."""
    config = parse_config(SERVICE_CONFIG, "test.yaml")
    events: list[Event] = []
    stop_watch = asyncio.Event()
    watching = asyncio.Event()
    async with running_service(config, deployment.url(SERVICE)):
        watch = asyncio.create_task(
            watch_events(deployment.url("viewer"), events.append, stop_watch, ready=watching)
        )
        await asyncio.wait_for(watching.wait(), 10)
        for user in ("operator", "viewer"):
            reply = await ask_service(
                deployment.url(user), ControlRequest(id=new_id(), verb=ControlVerb.STATUS)
            )
            assert reply.ok and reply.status is not None
        for verb in (ControlVerb.CLEAR, ControlVerb.SUSPEND):
            done = await ask_service(
                deployment.url("operator"), ControlRequest(id=new_id(), verb=verb, monitor="mrw1")
            )
            assert done.ok, done.error
        with pytest.raises(AMQPError):
            await ask_service(
                deployment.url("viewer"),
                ControlRequest(id=new_id(), verb=ControlVerb.CLEAR, monitor="mrw1"),
            )
        for _ in range(50):
            if events:
                break
            await asyncio.sleep(0.1)
        stop_watch.set()
        await asyncio.wait_for(watch, 10)
    assert events, "the viewer's watch saw no event"
