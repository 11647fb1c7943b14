"""A cold start on a long journal: 1,000,000 entries written through the service's own journal
code (a snapshot every 10,000, as `mrwbus run` takes them), one fault waiting, then `mrwbus run`
started: how long until it consumes, and until the fault's command arrives.

    python -m benchmarks.takeover --only cold
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import aio_pika

from benchmarks.broker import Vhost
from mrwbus.bus.publisher import json_message
from mrwbus.bus.topology import FAULTS, declare_service_topology
from mrwbus.config.loading import parse_config
from mrwbus.config.settings import ServiceSettings
from mrwbus.relay import make_fault
from tests.integration.processes import Process, Processes
from tests.reliability.harness import cluster_yaml, collect_commands, write_long_journal

ENTRIES = 1_000_000
MONITORS = 1_000


def became_active_at(process: Process, since: datetime) -> float | None:
    for line in process.output().splitlines():
        if "active: consuming" in line:
            return (datetime.fromisoformat(json.loads(line)["at"]) - since).total_seconds()
    return None


async def write_journal(url: str, config_text: str, entries: int) -> float:
    """`entries` decided faults journaled as the service journals them; returns the seconds."""
    started = time.monotonic()
    await write_long_journal(
        url,
        parse_config(config_text),
        entries,
        MONITORS,
        snapshot_every=ServiceSettings().snapshot_every,
    )
    return time.monotonic() - started


async def cold_start(workdir: Path, entries: int = ENTRIES) -> str:
    run = workdir / f"cold-{time.monotonic_ns()}"
    run.mkdir()
    # One monitor more than the journal's: its first fault waits for the new service.
    text = cluster_yaml(MONITORS + 1)
    (run / "cluster.yaml").write_text(text)
    with Vhost("cold") as vhost:
        wrote = await write_journal(vhost.url, text, entries)
        connection = await aio_pika.connect(vhost.url)
        exchanges = (await declare_service_topology(await connection.channel(), ())).exchanges
        fault = make_fault("server1", "FC", f"dev-{MONITORS}", fault_id="after-the-start")
        processes = Processes(run / "cluster.yaml", run, vhost.url)
        collecting = asyncio.create_task(collect_commands(vhost.url, "server1", 1, quiet=0.5))
        await asyncio.sleep(1)  # the collector consumes (it declares the agent queue)
        try:
            started, since = time.monotonic(), datetime.now(UTC)
            service = await processes.service("cold")
            await exchanges[FAULTS].publish(json_message(fault), fault.routing_key)
            found = await collecting
            first = found.first_at[next(iter(found.first_at))] - started
            line = next(x for x in service.output().splitlines() if "state recovered" in x)
            active = became_active_at(service, since)
        finally:
            await processes.stop_all()
            await connection.close()
    match = re.search(r"snapshot at entry (\d+), (\d+) entries replayed, ([\d.]+) s", line)
    assert match, line
    return (
        f"journal of {entries:,} entries (written in {wrote:.0f} s): process started -> first"
        f" command {first:.2f} s (active after {active or float('nan'):.2f} s); of it, state recovered from the snapshot at entry"
        f" {int(match.group(1)):,} and {int(match.group(2)):,} entries in {float(match.group(3)):.2f} s"
    )
