"""A stop ends the service and the agent within 5 s, whatever they were doing: connecting,
declaring, waiting for the leader lock, rebuilding the state, deciding a stream of faults,
running a command; under CPU load. Each run is stopped at a random moment. (The relay's own:
tests/integration/relay/test_stop.py.)"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from mrwbus.agent.handlers import HandlerResult
from mrwbus.agent.runtime import Agent
from mrwbus.config.loading import parse_config
from mrwbus.config.settings import ServiceSettings
from mrwbus.messages import RecoveryCommand
from mrwbus.relay import make_fault
from mrwbus.service.service import Service
from tests.integration.broker import BusProbe

pytestmark = pytest.mark.broker

RUNS = 30
STOP_WITHIN = 5.0
CLUSTER = """
servers: {server1: {}, server2: {}}
security: {verify_senders: false}
groups: {g1: {servers: [server1, server2]}}
monitors:
  nic: {category: NIC, recovery: {action: restart, target: g1, max_restarts: 1000}}
"""


async def stopped_within(run: asyncio.Task[None], stop: asyncio.Event) -> float:
    """Set `stop`; the seconds until `run` ended (it must end, and without an error)."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    stop.set()
    done, _ = await asyncio.wait({run}, timeout=STOP_WITHIN)
    assert done, f"still running {STOP_WITHIN:g} s after the stop"
    run.result()
    return loop.time() - began


async def test_the_service_stopped_at_any_moment_ends_within_five_seconds(
    amqp_url: str, probe: BusProbe, cpu_load: None
) -> None:
    config = parse_config(CLUSTER, "stop.yaml")
    chance = random.Random(12)
    feeding = asyncio.Event()

    async def feed() -> None:  # faults keep coming, so stops land in the middle of decisions
        n = 0
        while not feeding.is_set():
            await probe.publish(make_fault("server1", "NIC", f"eth{n % 4}"))
            n += 1
            await asyncio.sleep(0.01)

    feeder = asyncio.create_task(feed())
    slowest = 0.0
    try:
        for _ in range(RUNS):
            service = Service(config, ServiceSettings(amqp_url=amqp_url))
            stop = asyncio.Event()
            run = asyncio.create_task(service.run(stop))
            await asyncio.sleep(chance.uniform(0, 1.0))
            slowest = max(slowest, await stopped_within(run, stop))
    finally:
        feeding.set()
        await feeder
    assert slowest < STOP_WITHIN


async def test_the_agent_stopped_at_any_moment_ends_within_five_seconds(
    amqp_url: str, probe: BusProbe, tmp_path: Path, cpu_load: None
) -> None:
    chance = random.Random(13)

    async def slow_restart(command: RecoveryCommand) -> HandlerResult:
        await asyncio.sleep(chance.uniform(0, 0.5))
        return HandlerResult.succeeded("restarted")

    config = parse_config(CLUSTER, "stop.yaml")
    service = Service(config, ServiceSettings(amqp_url=amqp_url))
    service_stop = asyncio.Event()
    service_run = asyncio.create_task(service.run(service_stop))
    slowest = 0.0
    try:
        await asyncio.wait_for(service.consuming.wait(), 15)
        for n in range(RUNS):
            agent = Agent(
                "server1",
                amqp_url,
                tmp_path / "state",
                heartbeat_interval=0.2,
                probe_interval=0.1,
                initial_groups=["g1"],
                shutdown_grace=1.0,
            )
            agent.add_handler("restart", slow_restart)
            stop = asyncio.Event()
            run = asyncio.create_task(agent.run(stop))
            await probe.publish(make_fault("server1", "NIC", f"eth{n}"))  # a command to run
            await asyncio.sleep(chance.uniform(0, 1.0))
            slowest = max(slowest, await stopped_within(run, stop))
    finally:
        await stopped_within(service_run, service_stop)
    assert slowest < STOP_WITHIN
