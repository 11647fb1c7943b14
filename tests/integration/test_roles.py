"""The provisioned roles against the real broker: what each user may do, and what the broker
refuses. One vhost and one set of users for the module (users are broker-wide: cleaned up)."""

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
from pathlib import Path

import aio_pika
import pytest
from aiormq.exceptions import AMQPError

from mrwbus.bus.connection import connect
from mrwbus.bus.publisher import Publisher, json_message
from mrwbus.bus.topology import (
    COMMANDS,
    CONTROL,
    FAULTS,
    RESULTS,
    agent_queue,
    declare_agent_queue,
    declare_exchanges,
)
from mrwbus.messages import ControlRequest, ControlVerb, new_id
from mrwbus.provision import provision
from mrwbus.relay import make_fault, publish_fault
from mrwbus.roles import SERVICE, roles_for
from mrwbus.settings import amqp_url
from tests.integration.broker import BROKER_HOST, _management, delete_vhost, unique_vhost
from tests.integration.test_agent_runtime import command

SERVERS = ["server1", "server2"]
MANAGEMENT_URL = f"http://guest:guest@{BROKER_HOST}:15672/"
ADMIN_URL = f"amqp://guest:guest@{BROKER_HOST}:5672/"
USERS = [role.user for role in roles_for(SERVERS)]


@dataclass(frozen=True)
class Deployment:
    vhost: str
    secrets: Path

    def url(self, user: str) -> str:
        return amqp_url(
            f"amqp://{user}@{BROKER_HOST}:5672/{self.vhost}",
            password_file=str(self.secrets / user),
        )

    def passwords(self) -> dict[str, str]:
        return {user: (self.secrets / user).read_text().strip() for user in USERS}


def _provision(vhost: str, secrets: Path, rotate: str | None = None) -> object:
    return asyncio.run(
        provision(
            SERVERS,
            management_url=MANAGEMENT_URL,
            amqp_url=ADMIN_URL,
            vhost=vhost,
            secrets_dir=secrets,
            rotate=rotate,
        )
    )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    vhost = unique_vhost()
    secrets = tmp_path_factory.mktemp("secrets")
    try:
        _provision(vhost, secrets)
        # guest (the test's administrator) looks at the queues.
        _management(
            "PUT", f"/permissions/{vhost}/guest", {"configure": ".*", "write": ".*", "read": ".*"}
        )
        yield Deployment(vhost, secrets)
    finally:
        delete_vhost(vhost)
        for user in USERS:
            with contextlib.suppress(Exception):  # never created: nothing to clean
                _management("DELETE", f"/users/{user}")


async def _queue_depth(deployment: Deployment, queue: str) -> int:
    connection = await aio_pika.connect(f"{ADMIN_URL}{deployment.vhost}")
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
        await queue.consume(lambda message: None)  # type: ignore[arg-type, return-value]
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
        message = await queue.get(timeout=5, fail=True)
        assert message is not None and message.user_id == SERVICE
        await message.ack()
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
    done = _provision(deployment.vhost, deployment.secrets)
    assert done.kept == tuple(USERS) and not done.created and not done.rotated  # type: ignore[attr-defined]
    assert deployment.passwords() == before


async def test_rotate_replaces_one_password_and_it_works(deployment: Deployment) -> None:
    before = deployment.passwords()
    await asyncio.to_thread(_provision, deployment.vhost, deployment.secrets, "relay-server2")
    after = deployment.passwords()
    assert {user for user in USERS if before[user] != after[user]} == {"relay-server2"}
    await publish_fault(deployment.url("relay-server2"), make_fault("server2", "FC", "fc0"))
    # The old password no longer logs in.
    old = deployment.secrets / "old"
    old.write_text(before["relay-server2"])
    with pytest.raises(Exception, match=r"ACCESS_REFUSED|refused|auth"):
        await connect(
            amqp_url(
                f"amqp://relay-server2@{BROKER_HOST}:5672/{deployment.vhost}",
                password_file=str(old),
            ),
            attempts=1,
        )


def test_no_password_reaches_the_output_the_logs_or_argv(
    deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _provision(deployment.vhost, deployment.secrets, rotate="viewer")
    argv = [
        sys.executable,
        "-m",
        "mrwbus",
        "provision",
        "--config",
        str(Path(__file__).parents[2] / "config" / "cluster.yaml"),
        "--management-url",
        MANAGEMENT_URL,
        "--amqp-url",
        ADMIN_URL,
        "--vhost",
        deployment.vhost,
        "--secrets",
        str(deployment.secrets / "cli"),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    cli_users = sorted(p.name for p in (deployment.secrets / "cli").iterdir())
    passwords = [*deployment.passwords().values()]
    passwords += [(deployment.secrets / "cli" / user).read_text().strip() for user in cli_users]
    shown = done.stdout + done.stderr + caplog.text + " ".join(argv)
    assert "created:" in done.stdout
    for password in passwords:
        assert password not in shown
    # config/cluster.yaml names server3 too: its users were created here; cleaned with the rest.
    USERS.extend(user for user in cli_users if user not in USERS)
