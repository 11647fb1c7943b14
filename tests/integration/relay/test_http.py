"""`--http`: /healthz and /metrics of a running relay."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from mrwbus.relay.relay_http import serve_http
from tests.integration.relay.bus import FaultCollector, free_port
from tests.integration.relay.conftest import StartRelay

pytestmark = pytest.mark.broker


async def test_healthz_and_metrics_count_what_was_seen_and_confirmed(
    start_relay: StartRelay, faults: FaultCollector, tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    relay = await start_relay(
        f"""
        logs:
          app:
            path: {log}
            patterns: [{{name: hung, category: HA/AM, regex: '(?P<device>app\\d+) hung'}}]
        """
    )
    port = free_port()
    runner = await serve_http(relay, f"127.0.0.1:{port}")
    try:
        with log.open("a") as out:
            out.write("app7 hung\n")
        await faults.next(timeout=5)
        for _ in range(50):  # the confirm may reach the relay just after the fault reached us
            if relay.delivery.status.confirmed:
                break
            await asyncio.sleep(0.1)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                health = await response.json()
                assert response.status == 200, health
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                metrics = await response.text()
        assert health["status"] == "ok"
        assert health["sources"] == {"logs.app": True}
        assert (health["spooled"], health["confirmed"]) == (0, 1)
        assert 'mrwbus_relay_faults_seen_total{source="logs.app"} 1' in metrics
        assert "mrwbus_relay_faults_confirmed_total 1" in metrics
        assert "mrwbus_relay_spooled 0" in metrics
    finally:
        await runner.cleanup()
