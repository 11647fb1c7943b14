"""The provisioned roles on a real RabbitMQ 3.10 node, every connection over TLS: what each user
may do, and what the broker refuses. The node is the session's own (`tls_node`), so the users,
which are broker-wide, never meet another test's; one vhost for the module, deleted after."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from aiormq.exceptions import AMQPError

from mrwbus.agent import build_reference_agent
from mrwbus.bus.connection import connect, connection_user
from mrwbus.bus.publisher import Publisher, json_message
from mrwbus.bus.roles import SERVICE
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
from mrwbus.config.loading import parse_config
from mrwbus.config.settings import connection_parameters
from mrwbus.messages import ControlRequest, ControlVerb, Event, Outcome, new_id, utc_now
from mrwbus.relay import make_fault, publish_fault
from tests.integration.conftest import running_service
from tests.integration.deployment import (
    Deployment,
    queue_depth,
)
from tests.integration.test_agent_runtime import Calls, ResultsProbe, command, running


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
    before = await queue_depth(deployment, FAULTS)
    await publish_fault(url, make_fault("server1", "NIC", "eth0"))
    assert await queue_depth(deployment, FAULTS) == before + 1
    with pytest.raises(AMQPError):
        await publish_fault(url, make_fault("server2", "NIC", "eth0"))
    assert await queue_depth(deployment, FAULTS) == before + 1
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
        ("operator", ControlVerb.PLACE, False),
        ("viewer", ControlVerb.PLACE, True),
        ("operator", ControlVerb.REPLAY, False),
        ("viewer", ControlVerb.REPLAY, True),
        ("viewer", ControlVerb.DEAD_LETTERS, True),
    ],
)
async def test_the_broker_authorises_control_verbs_per_user(
    deployment: Deployment, user: str, verb: ControlVerb, refused: bool
) -> None:
    request = ControlRequest(id=new_id(), verb=verb)
    assert await _refused(deployment, user, f"publish {CONTROL} {request.routing_key}") is refused


@pytest.mark.parametrize(("user", "refused"), [("operator", False), ("viewer", True)])
async def test_operators_read_the_dead_letters_viewers_do_not(
    deployment: Deployment, user: str, refused: bool
) -> None:
    assert await _refused(deployment, user, f"consume {DEAD}") is refused
    assert await _refused(deployment, user, f"publish {DEAD} {DEAD}")
    if not refused:  # what `mrwbus dead list` does, as the operator
        from mrwbus.service.dead_letter_queue import held_dead_letters

        async with held_dead_letters(deployment.url(user)) as held:
            assert isinstance(held.letters, list)


async def test_the_service_publishes_commands_with_its_verified_user_id(
    deployment: Deployment,
) -> None:
    connection = await connect(deployment.url(SERVICE), attempts=1)
    try:
        channel = await connection.channel(publisher_confirms=True)
        # As `bus.session.Session` builds the service's and the agents' publisher.
        publisher = Publisher(
            channel, await declare_exchanges(channel), user_id=connection_user(channel)
        )
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
    before = await queue_depth(deployment, DEAD)
    async with (
        ResultsProbe.open(admin) as probe,
        running(agent),
    ):
        service = await connect(deployment.url(SERVICE), attempts=1)
        try:
            channel = await service.channel(publisher_confirms=True)
            publisher = Publisher(
                channel, await declare_exchanges(channel), user_id=connection_user(channel)
            )
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
    assert await queue_depth(deployment, DEAD) == before + 3


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
