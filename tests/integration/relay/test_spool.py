"""The broker away while a link drops: the fault waits in the spool, across a relay restart,
and arrives once when the broker can be reached. The shared broker is never stopped: the relay
talks to a port where nothing listens, later a TCP proxy to the broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from yarl import URL

from tests.integration.processes import Process, Processes
from tests.integration.relay.bus import FaultCollector, TcpProxy, free_port
from tests.integration.relay.conftest import relay_yaml
from tests.integration.relay.kernel import VethPair

pytestmark = pytest.mark.broker


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def spooled_ids(spool: Path) -> list[str]:
    if not spool.exists():
        return []
    return [
        json.loads(line)["add"]["id"]
        for line in spool.read_text().splitlines()
        if line.strip() and "add" in json.loads(line)
    ]


async def test_a_fault_spooled_while_the_broker_is_away_arrives_once_after_a_restart(
    amqp_url: str, faults: FaultCollector, veth: VethPair, tmp_path: Path
) -> None:
    port = free_port()
    broker = URL(amqp_url)
    unreachable = str(broker.with_port(port))
    config = tmp_path / "cluster.yaml"
    config.write_text(relay_yaml(f"debounce: 0.5\nnic: {{interfaces: [{veth.host}]}}", tmp_path))
    processes = Processes(config, tmp_path, unreachable)
    spool = tmp_path / "spool" / "server1.spool"

    async def start_relay() -> Process:
        process = await processes._start(
            "relay", ["relay", "--server", "server1", "--config", str(config)]
        )
        await wait_for(lambda: "relay of server1" in process.output(), "the relay's start line")
        return process

    proxy = TcpProxy(port, (broker.host or "127.0.0.1", broker.port or 5672))
    try:
        first = await start_relay()
        await asyncio.sleep(0.5)
        veth.peer_down()
        await wait_for(lambda: len(spooled_ids(spool)) == 1, "the fault in the spool")
        [spooled] = spooled_ids(spool)
        await first.kill()  # SIGKILL: the spool is all that is left

        second = await start_relay()
        await asyncio.sleep(1.5)  # the link is still down: the restarted relay must not add one
        assert spooled_ids(spool) == [spooled]
        assert faults.seen == []

        await proxy.start()  # the broker is reachable again
        fault = await faults.next(timeout=15)
        assert (fault.id, fault.device, fault.state) == (spooled, veth.host, "error")
        await faults.nothing_more(quiet=2.0)
        await wait_for(lambda: spooled_ids(spool) == [], "an empty spool")
        assert await second.terminate() == 0
    finally:
        await processes.stop_all()
        await proxy.stop()
