"""Watching the bus: an agent stopped, its commands pile up in its queue, and `status --json`,
the status page (in Chromium) and `/metrics` all show it; they fall back when it returns."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mrwbus.config.loading import load_config
from mrwbus.config.settings import ServiceSettings
from mrwbus.relay import make_fault
from mrwbus.service.service import Service
from mrwbus.web.server import StatusServer
from tests.integration.broker import BusProbe
from tests.integration.browser import chromium_page
from tests.integration.processes import Processes

pytestmark = pytest.mark.broker

SERVER3_QUEUE = "mrwbus.agent.server3"

CLUSTER = """
servers: {server1: {}, server2: {}, server3: {}}
service: {heartbeat_timeout: 60s}
security: {verify_senders: false}
groups:
  failover1: {servers: [server1, server2]}
  failover2: {servers: [server3, server2], resources: [db2]}
monitors:
  fc1: {category: FC, recovery: {action: restart, target: failover2, max_restarts: 5}}
  fc2: {category: FC, recovery: {action: restart, target: failover2, max_restarts: 5}}
  fc3: {category: FC, recovery: {action: restart, target: failover2, max_restarts: 5}}
agent:
  heartbeat_interval: 1s
  state_dir: state
  handlers:
    restart: {run: 'echo "$MRWBUS_SERVER restart $MRWBUS_GROUP" >> actions.log'}
"""


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def cli_status(amqp_url: str, cwd: Path) -> dict[str, Any]:
    env = dict(os.environ, MRWBUS_AMQP_URL=amqp_url)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mrwbus",
        "status",
        "--json",
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    status: dict[str, Any] = json.loads(out)
    return status


def agent_row(status: dict[str, Any]) -> dict[str, Any]:
    assert status["bus"] is not None, "the service has not read the queues yet"
    (row,) = [q for q in status["bus"]["queues"] if q["queue"] == SERVER3_QUEUE]
    return row


def metric(text: str, name: str) -> float:
    found = re.search(rf'^{name}\{{[^}}]*queue="{SERVER3_QUEUE}"[^}}]*\}} (\S+)$', text, re.M)
    assert found, f"{name} for {SERVER3_QUEUE} is not in /metrics"
    return float(found.group(1))  # prometheus_client writes 3.0


async def test_a_stopped_agent_queue_rises_everywhere_and_falls_when_it_returns(
    amqp_url: str, tmp_path: Path, probe: BusProbe
) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(CLUSTER)
    config = load_config(path)
    service = Service(config, ServiceSettings(amqp_url=amqp_url, queue_read_interval=0.3))
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    processes = Processes(path, tmp_path, amqp_url)
    try:
        await asyncio.wait_for(service.consuming.wait(), 15)
        agents = {server: await processes.agent(server) for server in ("server1", "server2")}
        agents["server3"] = await processes.agent("server3")
        await probe.wait_reports({"server1", "server2", "server3"})
        async with (
            StatusServer(service, port=0) as server,
            chromium_page() as page,
            aiohttp.ClientSession() as http,
        ):

            async def metrics() -> str:
                async with http.get(f"{server.url}/metrics") as response:
                    return await response.text()

            await page.navigate(f"{server.url}/")
            row = f'#queues tr[data-queue="{SERVER3_QUEUE}"]'

            async def consumed_before() -> None:
                found = agent_row(await cli_status(amqp_url, tmp_path))
                assert (found["ready"], found["consumers"], found["stalled"]) == (0, 1, False)

            await eventually(consumed_before)

            await agents["server3"].terminate()
            await probe.publish(make_fault("server3", "FC", "hba0", "link down"))

            async def piled_up() -> None:
                found = agent_row(await cli_status(amqp_url, tmp_path))
                assert found["ready"] == 3 and found["consumers"] == 0 and found["stalled"]

            await eventually(piled_up)
            await page.wait_for(f"document.querySelector('{row}')?.dataset.ready === '3'")
            assert await page.evaluate(
                f"document.querySelector('{row}').classList.contains('stalled')"
            )
            text = await metrics()
            assert metric(text, "mrwbus_queue_messages_ready") == 3
            assert metric(text, "mrwbus_queue_consumers") == 0
            assert metric(text, "mrwbus_agent_queue_stalled") == 1
            await probe.publish_raw(b"{not json", "server1.fc", message_id="garbled")
            await page.wait_for(
                "document.querySelector('#dead-letters li')?.dataset.reason"
                "?.startsWith('body is not JSON') === true"
            )
            await page.wait_for("document.getElementById('dead-count').textContent === '1'")
            await page.screenshot(tmp_path / "stalled.png")
            keep = os.environ.get("MRWBUS_SCREENSHOT_BUS")
            if keep:
                Path(keep).write_bytes((tmp_path / "stalled.png").read_bytes())

            agents["server3"] = await processes.agent("server3")

            async def drained() -> None:
                found = agent_row(await cli_status(amqp_url, tmp_path))
                assert (found["ready"], found["consumers"], found["stalled"]) == (0, 1, False)

            await eventually(drained)
            await page.wait_for(f"document.querySelector('{row}')?.dataset.ready === '0'")
            assert not await page.evaluate(
                f"document.querySelector('{row}').classList.contains('stalled')"
            )
            text = await metrics()
            assert metric(text, "mrwbus_queue_messages_ready") == 0
            assert metric(text, "mrwbus_agent_queue_stalled") == 0
        lines = (tmp_path / "actions.log").read_text().splitlines()
        assert lines.count("server3 restart failover2") == 3
    finally:
        await processes.stop_all()
        stop.set()
        await asyncio.wait_for(running, 30)


async def test_queue_depths_need_no_permission_at_all(amqp_url: str) -> None:
    """The least-privileged service user must still see the bus: a passive declare is allowed
    to a user whose configure, write and read permissions match nothing."""
    import aio_pika
    from yarl import URL

    from mrwbus.bus.queues import read_by_declare, watched_queues
    from mrwbus.bus.topology import declare_service_topology
    from tests.integration.broker import _management

    vhost = URL(amqp_url).path[1:]
    user = f"nobody-{vhost[-12:]}"
    admin = await aio_pika.connect(amqp_url)
    await declare_service_topology(await admin.channel(), ["server1"])
    await admin.close()
    _management("PUT", f"/users/{user}", {"password": "nothing", "tags": ""})
    try:
        _management(
            "PUT", f"/permissions/{vhost}/{user}", {"configure": "^$", "write": "^$", "read": "^$"}
        )
        nobody = await aio_pika.connect(str(URL(amqp_url).with_user(user).with_password("nothing")))
        try:
            channel = await nobody.channel()

            async def same_channel() -> aio_pika.abc.AbstractChannel:
                return channel

            depths = await read_by_declare(same_channel, watched_queues(["server1"]))
        finally:
            await nobody.close()
    finally:
        _management("DELETE", f"/users/{user}")
    assert [depth.queue for depth in depths] == [name for name, _, _ in watched_queues(["server1"])]
