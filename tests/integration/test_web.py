"""The status page, `/metrics` and `/healthz` beside a running service on the real broker,
and the page in a real headless Chromium: a fault shows up in Error without a reload.

Set MRWBUS_SCREENSHOT=docs/screenshots/status-page.png to keep the page's picture after the
failover (the test always takes one; the variable says where to keep it).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mrwbus.config.loading import parse_config
from mrwbus.config.settings import ServiceSettings
from mrwbus.messages import CommandStep
from mrwbus.relay import make_fault
from mrwbus.service.service import Service
from mrwbus.web import StatusPageError
from mrwbus.web.server import StatusServer
from tests.integration.broker import BROKER_HOST, BusProbe
from tests.integration.browser import chromium_page
from tests.integration.conftest import RunningService

pytestmark = pytest.mark.broker

CLUSTER = """
servers:
  server1: {server_group: site-a}
  server2: {server_group: site-a}
  server3: {server_group: site-b}
security: {verify_senders: false}
groups:
  failover1: {servers: [server1, server2, server3], resources: [fip1, app1]}
  failover2: {servers: [server2, server3, server1], resources: [db2]}
monitors:
  mrw1:
    category: NIC
    keyword: eth0
    servers: {server1: {}, server2: {keyword: eth1}}
    recovery: {action: failover, target: failover1, max_failovers: 1, final_action: stop_group}
  mrw2:
    category: FC
    recovery: {action: restart, target: failover2, max_restarts: 1, final_action: stop_group}
  mrw3:
    category: HA/SS
    keyword: sdb
    recovery: {action: final_action, target: failover2, final_action: reboot}
"""

MRW1_ON_SERVER1 = 'tr[data-monitor="mrw1"][data-server="server1"]'


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """Retry `check` (which asserts) until it passes or the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    async with http.get(url) as response:
        return response.status, response.headers["Content-Type"], await response.text()


def sample(metrics: str, name: str) -> str:
    found = re.search(rf"^{re.escape(name)} (\S+)$", metrics, re.MULTILINE)
    assert found, f"{name} is not in /metrics"
    value = found.group(1)  # prometheus_client writes whole numbers as `1.0`
    return str(int(float(value))) if float(value).is_integer() else value


async def test_metrics_count_a_fault_and_its_command(
    start_service: RunningService, probe: BusProbe, http: aiohttp.ClientSession
) -> None:
    service = await start_service(CLUSTER)
    async with StatusServer(service, port=0) as server:
        status, content_type, text = await get(http, f"{server.url}/metrics")
        assert status == 200 and content_type.startswith("text/plain")
        assert sample(text, 'mrwbus_faults_received_total{category="NIC"}') == "0"

        await probe.publish(make_fault("server1", "NIC", "eth0", "link down"))
        (stop,) = await probe.next_commands(1)
        assert stop.step is CommandStep.STOP

        # The service measures the latency once it owns a `Metrics`; until then the family is 0.
        measured = "1" if hasattr(service, "metrics") else "0"

        async def counted() -> str:
            # The command is counted on the broker's confirm, the latency right after it.
            _, _, text = await get(http, f"{server.url}/metrics")
            assert sample(text, 'mrwbus_commands_total{action="failover"}') == "1"
            assert sample(text, "mrwbus_fault_to_command_seconds_count") == measured
            return text

        text = await eventually(counted)
        assert sample(text, 'mrwbus_faults_received_total{category="NIC"}') == "1"
        assert sample(text, "mrwbus_faults_matched_total") == "1"
        assert sample(text, "mrwbus_faults_unmatched_total") == "0"
        assert sample(text, "mrwbus_monitors_in_error") == "1"
        assert sample(text, "mrwbus_broker_connected") == "1"
        assert sample(text, "mrwbus_consuming") == "1"
        assert sample(text, 'mrwbus_fault_to_command_seconds_bucket{le="+Inf"}') == measured


async def test_healthz_ok_while_consuming(
    start_service: RunningService, http: aiohttp.ClientSession
) -> None:
    service = await start_service(CLUSTER)
    async with StatusServer(service, port=0) as server:
        status, content_type, text = await get(http, f"{server.url}/healthz")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(text) == {
        "status": "ok",
        "broker_connected": True,
        "consuming": True,
        "role": "active",
        "outages": 0,
        "last_error": None,
        "node": f"{BROKER_HOST}:5672",
        "stuck": [],
    }


async def test_healthz_degraded_before_the_broker_answers(
    amqp_url: str, http: aiohttp.ClientSession
) -> None:
    config = parse_config(CLUSTER, "test.yaml")
    service = Service(config, ServiceSettings(amqp_url=amqp_url))  # never started
    async with StatusServer(service, port=0) as server:
        status, _, text = await get(http, f"{server.url}/healthz")
    assert status == 503
    assert json.loads(text)["status"] == "degraded"


async def test_json_routes_and_the_event_stream(
    start_service: RunningService, probe: BusProbe, http: aiohttp.ClientSession
) -> None:
    service = await start_service(CLUSTER)
    async with StatusServer(service, port=0) as server:
        status, _, text = await get(http, f"{server.url}/api/status")
        report = json.loads(text)
        assert status == 200
        assert {(m["monitor"], m["server"]) for m in report["monitors"]} >= {
            ("mrw1", "server1"),
            ("mrw1", "server2"),
        }
        assert all(m["status"] == "Normal" for m in report["monitors"])

        async with http.get(f"{server.url}/events/stream") as stream:
            assert stream.headers["Content-Type"] == "text/event-stream"
            kind, data = await next_sse(stream)
            assert kind == "snapshot" and data["health"]["status"] == "ok"

            fault = make_fault("server1", "NIC", "eth0", "link down")
            await probe.publish(fault)
            while True:
                kind, data = await next_sse(stream)
                if kind == "update" and data["event"]["code"] == "MRW-102":
                    break
            row = next(
                m
                for m in data["status"]["monitors"]
                if (m["monitor"], m["server"]) == ("mrw1", "server1")
            )
            assert row["status"] == "Error"
            assert data["event"]["fault_id"] == fault.id

        status, _, text = await get(http, f"{server.url}/api/events?limit=100")
        assert status == 200
        assert "MRW-102" in [event["code"] for event in json.loads(text)]
        status, _, _ = await get(http, f"{server.url}/api/events?limit=many")
        assert status == 400
        status, _, page = await get(http, f"{server.url}/")
        assert status == 200 and "EventSource" in page


async def next_sse(response: aiohttp.ClientResponse) -> tuple[str, dict[str, Any]]:
    """The next `event:`/`data:` pair, skipping keepalive comments."""
    kind, data = "message", ""
    while True:
        line = (await asyncio.wait_for(response.content.readline(), 10)).decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
        elif line == "" and data:
            return kind, json.loads(data)


async def test_stop_ends_open_streams(
    start_service: RunningService, http: aiohttp.ClientSession
) -> None:
    service = await start_service(CLUSTER)
    server = StatusServer(service, port=0)
    await server.start()
    async with http.get(f"{server.url}/events/stream") as stream:
        await next_sse(stream)
        await asyncio.wait_for(server.stop(), 5)
        assert await asyncio.wait_for(stream.content.read(), 5) == b""


async def test_a_taken_port_is_one_sentence(start_service: RunningService) -> None:
    service = await start_service(CLUSTER)
    async with StatusServer(service, port=0) as first:
        with pytest.raises(StatusPageError, match=r"cannot serve the status page on 127\.0\.0\.1:"):
            await StatusServer(service, port=first.port).start()


async def test_the_page_shows_a_fault_in_error_without_reload(
    start_service: RunningService, probe: BusProbe, tmp_path: Path
) -> None:
    service = await start_service(CLUSTER)
    async with StatusServer(service, port=0) as server, chromium_page() as page:
        await page.navigate(f"{server.url}/")
        # The first picture came over the stream, before the fault.
        assert (
            await page.wait_for(
                f"document.querySelector('{MRW1_ON_SERVER1} td.status')?.textContent"
            )
            == "Normal"
        )
        await page.wait_for("document.querySelector('#live').classList.contains('good')")
        await page.evaluate("window.loadedOnce = true")

        await probe.publish(make_fault("server1", "NIC", "eth0", "link down on eth0"))

        text = await page.wait_for(
            f"document.querySelector('{MRW1_ON_SERVER1} td.status-Error')?.textContent"
        )
        assert text == "Error"
        color = await page.evaluate(
            f"getComputedStyle(document.querySelector('{MRW1_ON_SERVER1} td.status-Error .badge'))"
            ".backgroundColor"
        )
        assert color == "rgb(197, 34, 31)"  # red
        assert await page.evaluate("window.loadedOnce === true"), "the page was reloaded"
        assert await page.evaluate("document.getElementById('errors').textContent") == "1"

        # Play the agents through the failover: server1 stops failover1, server2 starts it.
        (stop,) = await probe.next_commands(1)
        await probe.answer(stop)
        (start,) = await probe.next_commands(1)
        assert (start.step, start.server) == (CommandStep.START, "server2")
        await probe.answer(start)
        await page.wait_for(
            "document.querySelector('#groups tr[data-group=\"failover1\"] td.where')"
            "?.textContent === 'server2'"
        )
        assert (
            await page.evaluate(
                f"document.querySelector('{MRW1_ON_SERVER1}').children[6].textContent"
            )
            == "1"
        )  # failovers
        await page.wait_for("document.querySelector('#events li[data-code=\"MRW-102\"]') !== null")
        assert await page.evaluate("window.loadedOnce === true"), "the page was reloaded"

        shot = tmp_path / "status-page.png"
        await page.screenshot(shot)
        assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        keep = os.environ.get("MRWBUS_SCREENSHOT")
        if keep:
            Path(keep).parent.mkdir(parents=True, exist_ok=True)
            Path(keep).write_bytes(shot.read_bytes())


async def test_the_history_view_shows_faults_live_and_filters_them(
    start_service: RunningService, probe: BusProbe
) -> None:
    service = await start_service(CLUSTER)
    async with StatusServer(service, port=0) as server, chromium_page() as page:
        await page.navigate(f"{server.url}/")
        await page.wait_for("document.querySelector('#history tr[data-kind=\"active\"]') !== null")
        await page.evaluate("window.loadedOnce = true")

        await probe.publish(make_fault("server1", "NIC", "eth0", fault_id="h-nic"))
        await probe.publish(make_fault("server2", "FC", "host1", fault_id="h-fc"))
        for fault_id in ("h-nic", "h-fc"):
            await page.wait_for(
                f'document.querySelector(\'#history tr[data-kind="fault"][data-fault="{fault_id}"]\')'
                " !== null"
            )
        decided = await page.wait_for(
            'document.querySelector(\'#history tr[data-kind="decision"][data-fault="h-nic"]'
            " td.decided')?.textContent"
        )
        assert "failover stop failover1 on server1" in decided

        # A filter narrows the view at once, as `mrwbus history --monitor mrw2` would.
        await page.evaluate(
            "(() => { const input = document.querySelector('#history-filters [name=monitor]');"
            " input.value = 'mrw2'; input.dispatchEvent(new Event('input')); })()"
        )
        await page.wait_for(
            "document.querySelector('#history tr[data-fault=\"h-nic\"]') === null"
            " && document.querySelector('#history tr[data-fault=\"h-fc\"]') !== null"
        )
        assert await page.evaluate("window.loadedOnce === true"), "the page was reloaded"
