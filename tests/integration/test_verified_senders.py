"""The service's own checks of who sent what (docs/security.md, "Verified senders"), on the
session's TLS node with provisioned users, in a vhost where the broker's permissions are WIDE
OPEN (every user may write everywhere, with any routing key): what is refused here is refused
by the service itself, not by the broker, and would be with a broker misconfigured the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from mrwbus.agent import build_reference_agent
from mrwbus.bus.connection import connect, connection_user
from mrwbus.bus.publisher import Publisher
from mrwbus.bus.roles import SERVICE
from mrwbus.bus.rpc import ask_service
from mrwbus.bus.topology import COMMANDS, FAULTS, RESULTS, declare_exchanges
from mrwbus.config.loading import parse_config
from mrwbus.core.progress import Phase
from mrwbus.messages import (
    Action,
    CommandResult,
    ControlRequest,
    ControlVerb,
    FaultNotification,
    FenceAction,
    Outcome,
    RecoveryCommand,
    new_id,
    utc_now,
)
from mrwbus.messages.bus import DeadLetterReplay
from mrwbus.relay import make_fault
from mrwbus.service.service import Service
from tests.integration.broker import unique_vhost
from tests.integration.conftest import running_service
from tests.integration.deployment import USERS, Deployment
from tests.integration.test_agent_runtime import Calls, command, running

pytestmark = pytest.mark.broker

Url = Callable[[str], str]

FAILOVER = """
servers: {server1: {}, server2: {}}
groups:
  failover1: {servers: [server1, server2], resources: [app1]}
monitors:
  mrw1:
    category: NIC
    recovery: {action: failover, target: failover1, max_failovers: 1, final_action: stop_group}
"""


@pytest.fixture
def open_vhost(deployment: Deployment) -> Iterator[Url]:
    """A vhost of the test's own on the deployment's node where every user may do anything."""
    vhost = unique_vhost()
    deployment.management("PUT", f"/vhosts/{vhost}")
    try:
        for user in [*USERS, "guest"]:
            deployment.management(
                "PUT",
                f"/permissions/{vhost}/{user}",
                {"configure": ".*", "write": ".*", "read": ".*"},
            )
        yield (
            lambda user: (
                deployment.url(
                    user, password_file=deployment.node.dir / "guest-password", vhost=vhost
                )
                if user == "guest"
                else deployment.url(user, vhost=vhost)
            )
        )
    finally:
        with contextlib.suppress(Exception):
            deployment.management("DELETE", f"/vhosts/{vhost}")


async def send(url: str, exchange: str, routing_key: str, model: object) -> None:
    """Publish as the URL's user, with its (broker-verified) user_id; guest sends none."""
    connection = await connect(url, attempts=1)
    try:
        channel = await connection.channel(publisher_confirms=True)
        user = connection_user(channel)
        publisher = Publisher(
            channel, await declare_exchanges(channel), user_id=None if user == "guest" else user
        )
        await publisher.publish(exchange, routing_key, model)  # type: ignore[arg-type]
    finally:
        await connection.close()


async def dead_reasons(url: str, at_least: int, timeout: float = 20.0) -> list[str]:
    """The reasons of the dead letters (read and handed back), once there are `at_least`."""
    from mrwbus.service.dead_letter_queue import held_dead_letters

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with held_dead_letters(url) as held:
            reasons = [letter.reason for letter in held.letters]
        if len(reasons) >= at_least or asyncio.get_running_loop().time() > deadline:
            return reasons
        await asyncio.sleep(0.2)


async def until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    async def wait() -> None:
        while not condition():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(wait(), timeout)


def codes(service: Service) -> list[str]:
    return [event.code for event in service.events.recent]


def issued(service: Service) -> list[RecoveryCommand]:
    return list(service.cluster.issued.values())


@contextlib.asynccontextmanager
async def service_in(url: Url, yaml_text: str) -> AsyncIterator[Service]:
    config = parse_config(yaml_text, "test.yaml")
    assert config.security.verify_senders  # the default
    async with running_service(config, url(SERVICE)) as service:
        yield service


def result_for(command: RecoveryCommand, server: str) -> CommandResult:
    return CommandResult(
        id=new_id(),
        command_id=command.id,
        server=server,
        outcome=Outcome.SUCCEEDED,
        finished_at=utc_now(),
    )


async def test_only_the_relay_of_a_faults_server_is_believed(open_vhost: Url) -> None:
    async with service_in(open_vhost, FAILOVER) as service:
        fault = make_fault("server1", "NIC", "eth0", "link down")
        for sender in ("relay-server2", "agent-server1", "operator", "guest"):
            forged = fault.model_copy(update={"id": f"forged-by-{sender}"})
            await send(open_vhost(sender), FAULTS, forged.routing_key, forged)
        reasons = await dead_reasons(open_vhost(SERVICE), 4)
        assert len(reasons) == 4 and all(
            r.startswith("refused: a fault for 'server1'") for r in reasons
        )
        assert any("did not say who it is" in r for r in reasons)  # guest: no user_id
        assert codes(service).count("MRW-901") == 4
        named = {e.detail["sender"] for e in service.events.recent if e.code == "MRW-901"}
        assert named == {"relay-server2", "agent-server1", "operator", ""}  # guest named nobody
        assert service.cluster.state_of("mrw1", "server1").faults == 0 and not issued(service)

        await send(open_vhost("relay-server1"), FAULTS, fault.routing_key, fault)
        await until(lambda: bool(issued(service)))
        assert service.cluster.state_of("mrw1", "server1").faults == 1


async def test_a_stop_confirmed_by_agent_server2_never_starts_the_group_elsewhere(
    open_vhost: Url,
) -> None:
    async with service_in(open_vhost, FAILOVER) as service:
        fault = make_fault("server1", "NIC", "eth0", "link down")
        await send(open_vhost("relay-server1"), FAULTS, fault.routing_key, fault)
        await until(lambda: "failover1" in service.cluster.failovers)
        (stop,) = issued(service)
        assert (stop.server, stop.step) == ("server1", "stop")

        # agent-server2 speaks for server1 (its routing key and body say server1)...
        lie = result_for(stop, "server1")
        await send(open_vhost("agent-server2"), RESULTS, lie.routing_key, lie)
        # ...and for itself, about server1's stop.
        other = result_for(stop, "server2")
        await send(open_vhost("agent-server2"), RESULTS, other.routing_key, other)
        reasons = await dead_reasons(open_vhost(SERVICE), 2)
        assert any("a result for 'server1' sent by 'agent-server2'" in r for r in reasons)
        assert any("but the command was sent to 'server1'" in r for r in reasons)
        assert "MRW-901" in codes(service) and "MRW-903" in codes(service)
        await asyncio.sleep(0.5)
        assert [command.id for command in issued(service)] == [stop.id]  # no start anywhere
        assert service.cluster.failovers["failover1"].phase is Phase.STOPPING
        assert service.cluster.view.placement["failover1"] == "server1"

        # server1's own agent confirms: now, and only now, the start goes to server2.
        truth = result_for(stop, "server1")
        await send(open_vhost("agent-server1"), RESULTS, truth.routing_key, truth)
        await until(lambda: len(issued(service)) == 2)
        start = issued(service)[1]
        assert (start.server, start.step) == ("server2", "start")


async def test_control_verbs_are_authorised_per_user_and_named_in_the_log(
    open_vhost: Url,
) -> None:
    async with service_in(open_vhost, FAILOVER) as service:
        fault = make_fault("server1", "NIC", "eth0", "link down")
        await send(open_vhost("relay-server1"), FAULTS, fault.routing_key, fault)
        await until(lambda: service.cluster.state_of("mrw1", "server1").status.value == "Error")

        clear = ControlRequest(id=new_id(), verb=ControlVerb.CLEAR, monitor="mrw1", by="eve")
        refused = await ask_service(open_vhost("viewer"), clear)
        assert not refused.ok and "clear is not allowed to 'viewer'" in (refused.error or "")
        for user in ("relay-server1", "agent-server1"):
            assert not (
                await ask_service(open_vhost(user), clear.model_copy(update={"id": new_id()}))
            ).ok
        assert service.cluster.state_of("mrw1", "server1").status.value == "Error"
        assert codes(service).count("MRW-902") == 3
        assert (
            await ask_service(
                open_vhost("viewer"), ControlRequest(id=new_id(), verb=ControlVerb.STATUS)
            )
        ).ok

        # The routing key is the verb: a clear sent under the key `status` is refused.
        connection = await connect(open_vhost("operator"), attempts=1)
        try:
            channel = await connection.channel(publisher_confirms=True)
            publisher = Publisher(
                channel, await declare_exchanges(channel), user_id=connection_user(channel)
            )
            sneaky = clear.model_copy(update={"id": new_id()})
            await publisher.publish("mrwbus.control", "status", sneaky)
        finally:
            await connection.close()
        await until(lambda: codes(service).count("MRW-902") == 4)

        done = await ask_service(open_vhost("operator"), clear.model_copy(update={"id": new_id()}))
        assert done.ok, done.error
        cleared = [e for e in service.events.recent if e.code == "MRW-401"]
        assert cleared and cleared[-1].detail["by"] == "operator (eve)"
        reasons = await dead_reasons(open_vhost(SERVICE), 4)
        assert sum(r.startswith("refused: ") for r in reasons) == 4


ONLY_SERVER1 = """
servers: {server1: {}}
groups:
  failover1: {servers: [server1]}
monitors:
  mrw1: {category: NIC, recovery: {action: restart, target: failover1}}
"""

BOTH = """
servers: {server1: {}, server2: {}}
groups:
  failover1: {servers: [server1]}
  failover2: {servers: [server2]}
monitors:
  mrw1: {category: NIC, servers: {server1: {}}, recovery: {action: restart, target: failover1}}
  mrw2: {category: NIC, servers: {server2: {}}, recovery: {action: restart, target: failover2}}
"""


async def test_the_service_replays_for_operators_as_the_original_sender(open_vhost: Url) -> None:
    server2 = make_fault("server2", "NIC", "eth0", "link down")
    forged: FaultNotification = make_fault("server2", "NIC", "eth0", "forged")
    async with service_in(open_vhost, ONLY_SERVER1):
        await send(open_vhost("relay-server2"), FAULTS, server2.routing_key, server2)
        await send(open_vhost("guest"), FAULTS, forged.routing_key, forged)
        assert len(await dead_reasons(open_vhost(SERVICE), 2)) == 2

    async with service_in(open_vhost, BOTH) as service:
        unconfigured = DeadLetterReplay(reason="not in the configuration")
        for user in ("viewer", "relay-server2", "agent-server2"):
            request = ControlRequest(id=new_id(), verb=ControlVerb.REPLAY, replay=unconfigured)
            reply = await ask_service(open_vhost(user), request)
            assert not reply.ok and "replay is not allowed" in (reply.error or "")
        assert not issued(service)

        request = ControlRequest(id=new_id(), verb=ControlVerb.REPLAY, replay=unconfigured)
        reply = await ask_service(open_vhost("operator"), request, timeout=30)
        assert reply.ok, reply.error
        assert reply.text.endswith("1 dead letters replayed.")
        # Decided as sent by relay-server2, though the service republished it as itself.
        await until(lambda: bool(issued(service)))
        (restart,) = issued(service)
        assert (restart.server, restart.fault_id) == ("server2", server2.id)
        replayed = [e for e in service.events.recent if e.code == "MRW-803"]
        assert replayed and replayed[0].detail["by"] == "operator"

        # guest's fault, replayed, is refused again: a replay launders nothing.
        anonymous = DeadLetterReplay(reason="did not say who it is")
        request = ControlRequest(id=new_id(), verb=ControlVerb.REPLAY, replay=anonymous)
        reply = await ask_service(open_vhost("operator"), request, timeout=30)
        assert reply.ok and reply.text.endswith("1 dead letters replayed."), reply
        await until(lambda: codes(service).count("MRW-901") == 1)
        reasons = await dead_reasons(open_vhost(SERVICE), 4)
        assert sum("did not say who it is" in r for r in reasons) == 1
        assert not any("not in the configuration" in r for r in reasons)
        assert len(issued(service)) == 1


async def test_a_forged_command_never_runs_not_even_replayed_by_the_service(
    open_vhost: Url, tmp_path: Path
) -> None:
    """agent-server1 verifying senders: a command the operator publishes (the broker would refuse
    it; this vhost does not) is refused and its handler never runs; replayed through the
    service, which publishes it as itself, it is judged as sent by the agent that dead-lettered
    it (the service vouches only for dead letters it made) and refused again."""
    config = parse_config(FAILOVER, "test.yaml")
    calls = Calls()
    agent = build_reference_agent(
        config, "server1", open_vhost("agent-server1"), state_dir=tmp_path
    )
    agent.add_handler("restart", calls.succeed)
    async with service_in(open_vhost, FAILOVER), running(agent):
        forged = command()
        await send(open_vhost("operator"), COMMANDS, forged.routing_key, forged)
        (reason,) = await dead_reasons(open_vhost(SERVICE), 1)
        assert "sent by 'operator', not by 'mrwbus-service'" in reason

        replay = ControlRequest(
            id=new_id(), verb=ControlVerb.REPLAY, replay=DeadLetterReplay(reason="operator")
        )
        reply = await ask_service(open_vhost("operator"), replay, timeout=30)
        assert reply.ok and reply.text.endswith("1 dead letters replayed."), reply
        (again,) = await dead_reasons(open_vhost(SERVICE), 1)
        await asyncio.sleep(0.5)
        assert "sent by 'agent-server1', not by 'mrwbus-service'" in again
    assert calls.seen == []


async def test_a_fence_from_anyone_but_the_service_never_runs(
    open_vhost: Url, tmp_path: Path
) -> None:
    """agent-server2 may fence server1 (it has a bmc); a fence command the operator publishes
    is refused before any fence agent runs, and the service's own is carried out."""
    password = tmp_path / "bmc-server1"
    password.write_text("secret\n")
    fenced = FAILOVER.replace(
        "servers: {server1: {}, server2: {}}",
        "servers:\n  server1: {bmc: {fence_agent: fence_nowhere, address: 127.0.0.1,"
        f" username: admin, password_file: {password}}}}}\n  server2: {{}}",
    )
    config = parse_config(fenced, "test.yaml")
    calls = Calls()
    agent = build_reference_agent(
        config, "server2", open_vhost("agent-server2"), state_dir=tmp_path
    )
    agent.add_handler("fence", calls.succeed)  # stands in for the fence agent: never to run
    async with service_in(open_vhost, fenced), running(agent):
        forged = command().model_copy(
            update={
                "server": "server2",
                "action": Action.FENCE,
                "target": "server1",
                "fence_action": FenceAction.OFF,
                "group": None,
                "resource": None,
            }
        )
        await send(open_vhost("operator"), COMMANDS, forged.routing_key, forged)
        (reason,) = await dead_reasons(open_vhost(SERVICE), 1)
        assert "sent by 'operator', not by 'mrwbus-service'" in reason
        assert calls.seen == []

        asked = ControlRequest(
            id=new_id(), verb=ControlVerb.FENCE, server="server1", fence_action=FenceAction.STATUS
        )
        reply = await ask_service(open_vhost("operator"), asked, timeout=30)
        assert reply.ok, reply
        await until(lambda: len(calls.seen) == 1)
    [ran] = calls.seen
    assert (ran.server, ran.target, ran.action) == ("server2", "server1", Action.FENCE)
