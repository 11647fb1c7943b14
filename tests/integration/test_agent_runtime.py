"""Node agents on the real broker: each consumes only its server's commands, runs each once,
publishes results and reports on `mrwbus.results`, and survives a cancelled consumer."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from mrwbus.agent import Agent, HandlerResult, build_reference_agent
from mrwbus.agent.execution import result_id
from mrwbus.agent.ledger import CommandLedger
from mrwbus.bus.publisher import json_message
from mrwbus.bus.topology import (
    COMMANDS,
    DEAD,
    RESULTS,
    agent_queue,
    declare_agent_queue,
    declare_exchanges,
)
from mrwbus.config.loading import parse_config
from mrwbus.messages import (
    AgentReport,
    CommandResult,
    Outcome,
    RecoveryCommand,
    ReportReason,
    ReportRequest,
    WireModel,
    new_id,
    utc_now,
)

pytestmark = pytest.mark.broker


class ResultsProbe:
    """Publishes commands as the service does; collects what agents send to `mrwbus.results`,
    each with the routing key it came with."""

    def __init__(self, channel: AbstractChannel) -> None:
        self.channel = channel
        self.results: asyncio.Queue[tuple[str, CommandResult]] = asyncio.Queue()
        self.reports: asyncio.Queue[tuple[str, AgentReport]] = asyncio.Queue()

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator[ResultsProbe]:
        connection = await aio_pika.connect(url)
        try:
            probe = cls(await connection.channel(publisher_confirms=True))
            probe.exchanges = await declare_exchanges(probe.channel)
            queue = await probe.channel.declare_queue(exclusive=True)
            await queue.bind(probe.exchanges[RESULTS], "#")
            await queue.consume(probe._on_message, no_ack=True)
            yield probe
        finally:
            await connection.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        key = message.routing_key or ""
        if message.type == "AgentReport":
            await self.reports.put((key, AgentReport.model_validate_json(message.body)))
        else:
            await self.results.put((key, CommandResult.model_validate_json(message.body)))

    async def send(self, model: WireModel, routing_key: str) -> None:
        await self.exchanges[COMMANDS].publish(json_message(model), routing_key, mandatory=True)

    async def command(self, command: RecoveryCommand) -> None:
        await self.send(command, command.routing_key)

    async def next_result(self, timeout: float = 10.0) -> tuple[str, CommandResult]:
        return await asyncio.wait_for(self.results.get(), timeout)

    async def no_more_results(self, quiet: float = 0.5) -> None:
        try:
            extra = await asyncio.wait_for(self.results.get(), quiet)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected result: {extra!r}")

    async def next_report(
        self, reason: ReportReason, server: str = "server1", timeout: float = 10.0
    ) -> AgentReport:
        """The next report of this reason from this server, skipping others."""

        async def find() -> AgentReport:
            while True:
                key, report = await self.reports.get()
                if report.server == server and report.reason is reason:
                    assert key == f"{server}.report"
                    return report

        return await asyncio.wait_for(find(), timeout)

    async def messages_in(self, queue: str) -> int:
        declared = await self.channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0


@pytest.fixture
async def probe(amqp_url: str) -> AsyncIterator[ResultsProbe]:
    async with ResultsProbe.open(amqp_url) as opened:
        yield opened


@asynccontextmanager
async def running(agent: Agent) -> AsyncIterator[Agent]:
    """The agent consuming in this process; stopped gracefully afterwards."""
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        ready = asyncio.create_task(agent.ready.wait())
        await asyncio.wait({ready, task}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # it failed to start: show why
        assert agent.ready.is_set(), "the agent did not start consuming"
        yield agent
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


class Calls:
    """Handlers that record the commands they ran."""

    def __init__(self) -> None:
        self.seen: list[RecoveryCommand] = []

    async def succeed(self, command: RecoveryCommand) -> HandlerResult:
        self.seen.append(command)
        return HandlerResult.succeeded(f"{command.action.value} done")


def make_agent(url: str, state: Path, server: str, calls: Calls, **options: Any) -> Agent:
    agent = Agent(server, url, state, heartbeat_interval=30, watchdog_interval=0.2, **options)
    for name in ("restart", "failover.stop", "failover.start", "final_action.stop_group"):
        agent.add_handler(name, calls.succeed)
    return agent


def command(**fields: Any) -> RecoveryCommand:
    values: dict[str, Any] = {
        "id": new_id(),
        "fault_id": new_id(),
        "monitor": "mrw1",
        "server": "server1",
        "action": "restart",
        "group": "failover1",
        "issued_at": utc_now(),
    }
    values.update(fields)
    return RecoveryCommand.model_validate(values)


async def test_a_command_runs_only_on_its_own_server(
    amqp_url: str, probe: ResultsProbe, tmp_path: Path
) -> None:
    calls1, calls2 = Calls(), Calls()
    async with (
        running(make_agent(amqp_url, tmp_path, "server1", calls1)),
        running(make_agent(amqp_url, tmp_path, "server2", calls2)),
    ):
        restart = command()
        await probe.command(restart)  # routing key server1.restart

        key, result = await probe.next_result()
        assert key == "server1.result"
        assert result.command_id == restart.id
        assert result.id == result_id(restart.id)
        assert (result.server, result.outcome, result.detail) == (
            "server1",
            Outcome.SUCCEEDED,
            "restart done",
        )
        assert [seen.id for seen in calls1.seen] == [restart.id]
        await probe.no_more_results()
        assert calls2.seen == []  # the agent of server2 never saw it
        assert await probe.messages_in(agent_queue("server1")) == 0
        assert await probe.messages_in(agent_queue("server2")) == 0


async def test_commands_wait_in_the_queue_until_the_agent_comes(
    amqp_url: str, probe: ResultsProbe, tmp_path: Path
) -> None:
    await declare_agent_queue(probe.channel, probe.exchanges, "server1")  # as the service does
    first, second = command(), command(action="failover", step="stop")
    await probe.command(first)
    await probe.command(second)

    calls = Calls()
    async with running(make_agent(amqp_url, tmp_path, "server1", calls)):
        results = [(await probe.next_result())[1] for _ in range(2)]
    assert [result.command_id for result in results] == [first.id, second.id]  # in order
    assert [seen.id for seen in calls.seen] == [first.id, second.id]


async def test_a_redelivered_command_is_not_run_twice(
    amqp_url: str, probe: ResultsProbe, tmp_path: Path
) -> None:
    calls = Calls()
    restart = command()
    async with running(make_agent(amqp_url, tmp_path, "server1", calls)):
        await probe.command(restart)
        _, first = await probe.next_result()
        await probe.command(restart)  # the same id again
        _, again = await probe.next_result()

    # And after a restart of the agent, from its journal.
    async with running(make_agent(amqp_url, tmp_path, "server1", calls)):
        await probe.command(restart)
        _, after_restart = await probe.next_result()

    assert len(calls.seen) == 1
    assert again == first == after_restart  # the same result, id and finished_at included


async def test_a_command_interrupted_earlier_is_failed_not_run(
    amqp_url: str, probe: ResultsProbe, tmp_path: Path
) -> None:
    start = command(action="failover", step="start")
    journal = CommandLedger.open(tmp_path / "server1")
    journal.start(start.id)  # and the agent was killed here
    journal.close()

    calls = Calls()
    async with running(make_agent(amqp_url, tmp_path, "server1", calls)):
        await probe.command(start)  # redelivered
        _, result = await probe.next_result()
    assert result.outcome is Outcome.FAILED
    assert result.detail.startswith("interrupted")
    assert calls.seen == []


async def test_reports_at_start_on_request_on_change_and_as_heartbeat(
    amqp_url: str, probe: ResultsProbe, tmp_path: Path
) -> None:
    agent = make_agent(amqp_url, tmp_path, "server1", Calls(), initial_groups={"failover2"})
    agent.heartbeat_interval = 0.3
    async with running(agent):
        at_start = await probe.next_report(ReportReason.START)
        assert at_start.active_groups == ["failover2"]
        assert at_start.heartbeat_interval == 0.3

        ask = ReportRequest(id=new_id(), server="server1", asked_at=utc_now())
        await probe.send(ask, ask.routing_key)
        asked = await probe.next_report(ReportReason.ASKED)
        assert asked.active_groups == ["failover2"]

        await probe.command(command(action="failover", step="start", group="failover1"))
        await probe.next_result()
        changed = await probe.next_report(ReportReason.CHANGE)
        assert changed.active_groups == ["failover1", "failover2"]

        await probe.command(command(action="final_action", final_action="stop_group", group=None))
        await probe.next_result()
        assert (await probe.next_report(ReportReason.CHANGE)).active_groups == []

        agent.active_groups = {"failover2"}  # the agent's author knows better
        assert (await probe.next_report(ReportReason.CHANGE)).active_groups == ["failover2"]
        heartbeat = await probe.next_report(ReportReason.HEARTBEAT)
        assert heartbeat.active_groups == ["failover2"]

    # The journal remembers the groups across a restart.
    again = make_agent(amqp_url, tmp_path, "server1", Calls(), initial_groups={"failover1"})
    async with running(again):
        assert (await probe.next_report(ReportReason.START)).active_groups == ["failover2"]


async def test_a_dangerous_final_action_without_handler_is_refused(
    amqp_url: str, probe: ResultsProbe, tmp_path: Path
) -> None:
    async with running(make_agent(amqp_url, tmp_path, "server1", Calls(), initial_groups={"g"})):
        await probe.next_report(ReportReason.START)
        await probe.command(command(action="final_action", final_action="shutdown"))
        key, result = await probe.next_result()
        assert key == "server1.result"
        assert result.outcome is Outcome.REFUSED
        assert result.detail == (
            "no handler configured for final_action.shutdown on server1; "
            "dangerous final actions run only when configured"
        )
        await asyncio.sleep(0.3)
        assert probe.reports.empty()  # refused: no change of groups


async def test_invalid_commands_are_acked_and_dead_lettered(
    amqp_url: str, probe: ResultsProbe, tmp_path: Path
) -> None:
    calls = Calls()
    async with running(make_agent(amqp_url, tmp_path, "server1", calls)):
        plain = aio_pika.Message(b"not json", message_id="junk")
        await probe.exchanges[COMMANDS].publish(plain, "server1.restart")
        with_id = json.dumps({"id": "cmd-bad", "server": "server1", "action": "dance"})
        await probe.exchanges[COMMANDS].publish(
            aio_pika.Message(with_id.encode()), "server1.restart"
        )
        wrong_server = command(server="server2")
        await probe.send(wrong_server, "server1.restart")

        _, refused = await probe.next_result()
        assert refused.command_id == "cmd-bad"
        assert refused.outcome is Outcome.REFUSED
        assert refused.detail.startswith("invalid command: body breaks the command schema")
        _, other = await probe.next_result()
        assert other.command_id == wrong_server.id
        assert other.outcome is Outcome.REFUSED
        assert other.detail == "command for server2 reached the agent of server1; refused"
        await probe.no_more_results()
        assert calls.seen == []
        assert await probe.messages_in(agent_queue("server1")) == 0
        assert await probe.messages_in(DEAD) == 2


async def test_a_cancelled_consumer_is_replaced(
    amqp_url: str, probe: ResultsProbe, tmp_path: Path
) -> None:
    calls = Calls()
    agent = make_agent(amqp_url, tmp_path, "server1", calls)
    async with running(agent):
        await probe.channel.queue_delete(agent_queue("server1"))  # the broker cancels it
        for _ in range(100):
            if agent.health.outages and agent.ready.is_set():
                break
            await asyncio.sleep(0.1)
        assert agent.health.outages == 1
        assert "cancelled the consumer" in (agent.health.last_error or "")
        await probe.next_report(ReportReason.START)  # the new session started over

        await probe.command(command())
        _, result = await probe.next_result()
        assert result.outcome is Outcome.SUCCEEDED


async def test_a_stop_lets_the_running_command_finish(
    amqp_url: str, probe: ResultsProbe, tmp_path: Path
) -> None:
    began, release = asyncio.Event(), asyncio.Event()

    async def slow_start(command: RecoveryCommand) -> HandlerResult:
        began.set()
        await release.wait()
        return HandlerResult.succeeded("started at last")

    agent = make_agent(amqp_url, tmp_path, "server1", Calls())
    agent.add_handler("failover.start", slow_start)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    await asyncio.wait_for(agent.ready.wait(), 15)
    start = command(action="failover", step="start")
    await probe.command(start)
    await asyncio.wait_for(began.wait(), 10)

    stop.set()
    await asyncio.sleep(0.5)
    assert not task.done()  # it waits for the command
    release.set()
    await asyncio.wait_for(task, 10)

    _, result = await probe.next_result()
    assert (result.command_id, result.detail) == (start.id, "started at last")
    assert await probe.messages_in(agent_queue("server1")) == 0  # acknowledged


async def test_the_reference_agent_runs_configured_command_lines(
    amqp_url: str, probe: ResultsProbe, tmp_path: Path
) -> None:
    marker = tmp_path / "restarted"
    config = parse_config(
        textwrap.dedent(f"""
            servers: {{server1: {{}}, server2: {{}}}}
            security: {{verify_senders: false}}
            groups:
              failover1: {{servers: [server1, server2]}}
            monitors:
              mrw1: {{category: NIC, recovery: {{action: restart, target: failover1, before_script: "exit 3"}}}}
            agent:
              heartbeat_interval: 5s
              handlers:
                restart: {{run: 'echo "$MRWBUS_GROUP $MRWBUS_MONITOR" > {marker}'}}
        """),
        "test.yaml",
    )
    agent = build_reference_agent(config, "server1", amqp_url, state_dir=tmp_path / "state")
    async with running(agent):
        assert (await probe.next_report(ReportReason.START)).active_groups == ["failover1"]
        await probe.command(command(before_script="exit 3"))
        _, result = await probe.next_result()
    assert result.outcome is Outcome.SUCCEEDED
    assert result.before_script_outcome is Outcome.FAILED
    assert marker.read_text() == "failover1 mrw1\n"
    assert (tmp_path / "state" / "server1" / "journal.jsonl").exists()
