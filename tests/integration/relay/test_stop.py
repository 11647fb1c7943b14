"""A stop ends every relay task in bounded time, whatever the relay was doing: connecting,
publishing, a program starting, a source failing (a log "file" that is a folder) or waiting to
start again, under CPU load. Each run is stopped at a
random moment; each must end within 5 s and leave no task of its own behind."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from mrwbus.relay.daemon import Relay
from mrwbus.relay.registry import for_server, parse_config
from tests.integration.relay.bus import FaultCollector
from tests.integration.relay.conftest import relay_yaml

pytestmark = pytest.mark.broker

RUNS = 100
STOP_WITHIN = 5.0


async def test_a_stop_at_any_moment_ends_every_task_within_five_seconds(
    amqp_url: str, faults: FaultCollector, tmp_path: Path, cpu_load: None
) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    ticker = tmp_path / "ticker.sh"
    ticker.write_text(
        'while true; do echo \'{"category": "NIC", "device": "eth0"}\'; sleep 0.05; done\n'
    )
    section = f"""
        logs:
          app: {{path: {log}, patterns: [{{name: hung, category: HA/AM, regex: '(?P<device>app\\d+) hung'}}]}}
          broken: {{path: {tmp_path}, patterns: [{{name: p, category: NIC, regex: '(?P<device>x)'}}]}}
        exec:
          ticker: {{run: "sh {ticker}", restart_min: 0.1, restart_max: 0.2}}
        """
    settings = for_server(parse_config(relay_yaml(section, tmp_path), "t.yaml").relay, "server1")
    chance = random.Random(27)
    before = asyncio.all_tasks()
    slowest = 0.0
    for run in range(RUNS):
        relay = Relay(settings, amqp_url)
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        await asyncio.sleep(chance.uniform(0.0, 0.4))
        with log.open("a") as out:
            out.write(f"app{run} hung\n")
        await asyncio.sleep(chance.uniform(0.0, 0.1))
        stop.set()
        started = asyncio.get_running_loop().time()
        done, _ = await asyncio.wait({task}, timeout=STOP_WITHIN)
        assert done, f"run {run}: the relay did not end within {STOP_WITHIN:g}s of the stop"
        task.result()
        slowest = max(slowest, asyncio.get_running_loop().time() - started)
        current = asyncio.current_task()
        left = {t for t in asyncio.all_tasks() - before if not t.done() and t is not current}
        assert not left, f"run {run}: tasks left behind: {left}"
    assert faults.seen, "no fault went out in all the runs"
    print(f"{RUNS} stops, the slowest took {slowest:.2f}s")  # for the log; not asserted
