"""Takeover time: how long nothing is decided while replicas change hands, with two real
replicas (`mrwbus run`), faults at 40/s from a relay that never gives up, and the commands read
as server1's agent would. Every scenario checks that every fault gave exactly one command.

    python -m benchmarks.takeover                  # every scenario
    python -m benchmarks.takeover --only silent    # silent, kill, pause, starve

- silent: the active replica's TCP path to the broker stops forwarding (a proxy that keeps
  the sockets open and passes nothing, no FIN, no RST) for 8 s, then forwards again;
- kill: SIGKILL of the active replica;
- pause: the active replica stopped (SIGSTOP) for 1 s, as a long collection would;
- starve: four busy processes on the two cores for 10 s (load 4).

Printed per run: when the standby was active and when the first command after the disruption
arrived, both from the disruption's start, and whether the roles changed. Nothing asserts a
timing; a doubled or lost fault ends the run with an error.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import aio_pika

from benchmarks.broker import Vhost
from benchmarks.cold_start import cold_start
from mrwbus.bus.publisher import json_message
from mrwbus.bus.topology import FAULTS as FAULTS_EXCHANGE
from mrwbus.messages import FaultNotification
from tests.cluster.support import SilentProxy
from tests.integration.processes import Process, Processes
from tests.reliability.harness import (
    check_exactly_once,
    cluster_yaml,
    collect_commands,
    faults_for,
)

RATE = 40.0
FAULTS = 800
"""20 s of faults at 40/s: before, during and after the disruption."""


async def publish_steadily(url: str, faults: list[FaultNotification], rate: float) -> None:
    """One fault every 1/rate s, each confirmed (the broker itself is never disrupted here), so
    that the first command after a takeover waits for no burst of the publisher's."""
    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(FAULTS_EXCHANGE, ensure=False)
        started = time.monotonic()
        for index, fault in enumerate(faults):
            ahead = index / rate - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
            await exchange.publish(json_message(fault), fault.routing_key)
    finally:
        await connection.close()


def lock_taken_at(process: Process, since: datetime) -> float | None:
    """Seconds from `since` to the replica's taking the lock: its "state recovered" line less
    the rebuild it reports."""
    for line in process.output().splitlines():
        if "state recovered" not in line:
            continue
        record = json.loads(line)
        at = datetime.fromisoformat(record["at"])
        rebuild = float(record["message"].rsplit(", ", 1)[1].removesuffix(" s"))
        if at >= since:
            return (at - since).total_seconds() - rebuild
    return None


def became_active_at(process: Process, since: datetime) -> float | None:
    """Seconds from `since` to the replica's first "active" log line after it."""
    for line in process.output().splitlines():
        if "active: consuming" not in line:
            continue
        at = datetime.fromisoformat(json.loads(line)["at"])
        if at >= since:
            return (at - since).total_seconds()
    return None


async def wait_active(process: Process, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while "active: consuming" not in process.output():
        if not process.running or time.monotonic() > deadline:
            raise RuntimeError(f"{process.name} never became active:\n{process.output()[-2000:]}")
        await asyncio.sleep(0.05)


Disrupt = Callable[[Process, Process, SilentProxy | None], Awaitable[None]]


async def scenario(workdir: Path, name: str, disrupt: Disrupt, *, proxied: bool) -> str:
    """Replica A active (behind a proxy when `proxied`), replica B standby; faults flow; after
    5 s `disrupt(a, b)`. Returns one line of figures."""
    run = workdir / f"{name}-{time.monotonic_ns()}"
    run.mkdir()
    (run / "cluster.yaml").write_text(cluster_yaml(FAULTS))
    with Vhost("takeover") as vhost:
        proxy = await SilentProxy(5672).start() if proxied else None
        processes = Processes(run / "cluster.yaml", run, vhost.url)
        try:
            if proxy is not None:
                processes.amqp_url = vhost.url.replace(":5672/", f":{proxy.port}/")
            a = await processes.service("replica-a")
            await wait_active(a)
            processes.amqp_url = vhost.url
            b = await processes.service("replica-b")
            await asyncio.sleep(2)
            faults = faults_for(FAULTS)
            collecting = asyncio.create_task(collect_commands(vhost.url, "server1", FAULTS))
            publishing = asyncio.create_task(publish_steadily(vhost.url, faults, RATE))
            await asyncio.sleep(5)
            since, began = datetime.now(UTC), time.monotonic()
            await disrupt(a, b, proxy)
            await publishing
            found = await collecting
            check_exactly_once(found, faults)
            later = [at for at in found.first_at.values() if at > began]
            first = min(later) - began if later else float("nan")
            active = became_active_at(b, since)
            gaps = sorted(found.first_at.values())
            longest = max(y - x for x, y in itertools.pairwise(gaps))
            taken = lock_taken_at(b, since)
            role = (
                f"standby took the lock after {taken or float('nan'):.2f} s, active after"
                f" {active:.2f} s"
                if active is not None
                else "no takeover"
            )
            return (
                f"{name}: {role}; first command {first:.2f} s after; longest pause in commands"
                f" {longest:.2f} s; {len(found.deliveries)} commands, every fault exactly once,"
                f" {found.wire_duplicates} same-id resends"
            )
        finally:
            await processes.stop_all()
            if proxy is not None:
                await proxy.close()


async def silent(a: Process, b: Process, proxy: SilentProxy | None) -> None:
    assert proxy is not None
    proxy.silence()
    await asyncio.sleep(8)
    proxy.resume()


async def kill(a: Process, b: Process, _: SilentProxy | None) -> None:
    await a.kill()
    await wait_active(b)


async def pause(a: Process, b: Process, _: SilentProxy | None) -> None:
    assert a.process is not None
    a.process.send_signal(signal.SIGSTOP)
    await asyncio.sleep(1.0)
    a.process.send_signal(signal.SIGCONT)
    await asyncio.sleep(3)


async def starve(a: Process, b: Process, _: SilentProxy | None) -> None:
    busy = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import time\nend = time.time() + 10\nwhile time.time() < end: pass",
            ]
        )
        for _ in range(4)
    ]
    for process in busy:
        await asyncio.to_thread(process.wait)


SCENARIOS: dict[str, tuple[int, Callable[[Path], Awaitable[str]]]] = {
    "silent": (5, lambda w: scenario(w, "silent 8 s", silent, proxied=True)),
    "kill": (3, lambda w: scenario(w, "kill", kill, proxied=False)),
    "pause": (3, lambda w: scenario(w, "pause 1 s", pause, proxied=False)),
    "starve": (2, lambda w: scenario(w, "load 4", starve, proxied=False)),
    "cold": (1, cold_start),
}


async def main(only: list[str], runs: int | None, keep: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="mrwbus-takeover-") as tmp:
        workdir = Path(keep or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for name, (default_runs, run) in SCENARIOS.items():
            if only and name not in only:
                continue
            count = runs or default_runs
            for index in range(count):
                print(f"{name} {index + 1}/{count}: {await run(workdir)}", flush=True)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", action="append", default=[], choices=list(SCENARIOS))
    parser.add_argument("--runs", type=int, help="runs of each scenario (default: 5 silent, ...)")
    parser.add_argument("--keep", metavar="DIR", help="keep the processes' logs in DIR")
    args = parser.parse_args()
    asyncio.run(main(args.only, args.runs, args.keep))


if __name__ == "__main__":
    cli()
