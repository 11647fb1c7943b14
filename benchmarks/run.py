"""Run every benchmark and print mrwbus beside the bare relay, from one run:

    python -m benchmarks.run            # everything (about 8 minutes on 2 cores)
    python -m benchmarks.run --quick    # smaller counts, for checking the harness

Each phase gets a fresh vhost and fresh processes: the contender (`mrwbus run` with every
guarantee on, or the bare relay) and the load generator, each in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.broker import Vhost, faults_queue_state
from benchmarks.commands import CommandReader
from benchmarks.configs import large_cluster, restart_monitors
from benchmarks.contenders import BARE, MRWBUS, Contender
from benchmarks.recovery import recovery_rows

Figures = dict[str, Any]

LATENCY_SEGMENTS = ((200.0, 3), (1_000.0, 1))
"""(faults/s offered, 10-s segments per contender): at 1,000/s one segment is 10,000 faults."""


class Bench:
    def __init__(self, scale: float, workdir: Path) -> None:
        self.scale = scale
        self.workdir = workdir

    def n(self, count: int) -> int:
        return max(10, int(count * self.scale))

    def config(self, name: str, text: str) -> Path:
        path = self.workdir / name
        if not path.exists():
            path.write_text(text)
        return path

    async def loadgen(
        self, url: str, first: int, count: int, monitors: int, rate: float, prefix: str
    ) -> dict[str, float]:
        out = self.workdir / f"sent-{prefix}-{first}.json"
        argv = [sys.executable, "-m", "benchmarks.loadgen", url, str(first), str(count)]
        argv += ["--monitors", str(monitors), "--rate", str(rate), "--prefix", prefix]
        process = await asyncio.create_subprocess_exec(*argv, "--out", str(out))
        if await process.wait() != 0:
            raise RuntimeError("the load generator failed")
        sent: dict[str, float] = json.loads(out.read_text())
        return sent

    def contender(self, kind: str, vhost: Vhost, config: Path) -> Contender:
        log = self.workdir / f"{kind.replace(' ', '-')}.log"
        return Contender(kind, vhost.url, config, log)

    # --- phases -------------------------------------------------------------------------

    async def saturated(self, kind: str) -> Figures:
        """Faults already waiting, each the first for its monitor: how fast they turn into
        commands (first to last command)."""
        count = self.n(20_000)
        config = self.config(f"restart-{count}.yaml", restart_monitors(count))
        with Vhost("sat") as vhost:
            contender = self.contender(kind, vhost, config)
            await contender.start()  # declares the topology
            contender.stop()
            await self.loadgen(vhost.relay_url, 0, count, count, 0, "sat")
            async with CommandReader(vhost.url) as reader:
                await contender.start()
                try:
                    await reader.wait_for(count, timeout=600)
                finally:
                    contender.stop()
            arrived = reader.received.arrived.values()
            return {"throughput": (count - 1) / (max(arrived) - min(arrived))}

    async def offered(self, kind: str, rate: float, seconds: float = 10) -> Segment:
        """One segment: `rate` faults/s offered for `seconds` to a freshly started contender."""
        count = self.n(int(rate * seconds))
        config = self.config(f"restart-{count}.yaml", restart_monitors(count))
        with Vhost(f"rate{int(rate)}") as vhost:
            contender = self.contender(kind, vhost, config)
            async with CommandReader(vhost.url) as reader:
                await contender.start()
                try:
                    sent = await self.loadgen(vhost.relay_url, 0, count, count, rate, "rate")
                    await reader.wait_for(count, timeout=600)
                finally:
                    contender.stop()
            arrived = reader.received.arrived
            span = max(arrived.values()) - min(sent.values())
            return Segment([(arrived[i] - sent[i]) * 1000 for i in sent], count / span)

    async def latency(self, rate: float, segments: int) -> dict[str, Figures]:
        """Both contenders at `rate`, in `segments` alternating segments of 10 s each (ABBA
        order), their latencies pooled: a p99 of one 10-s segment is its 20th-worst fault at
        200/s, and a single broker stall (a relay segment once had one of 90 ms, delaying 18
        faults) decided it; alternating keeps a slow minute of the machine from landing on one
        contender only."""
        pooled: dict[str, list[Segment]] = {BARE: [], MRWBUS: []}
        for segment in range(segments):
            order = (BARE, MRWBUS) if segment % 2 == 0 else (MRWBUS, BARE)
            for kind in order:
                pooled[kind].append(await self.offered(kind, rate))
        return {kind: _latency_figures(found) for kind, found in pooled.items()}

    async def storm(self, kind: str) -> Figures:
        """5,000 monitors put in Error, then 50,000 more faults for them: the drain rate, the
        commands the repeats caused, and the contender's memory before and after."""
        monitors, repeats = self.n(5_000), self.n(50_000)
        config = self.config(f"restart-{monitors}.yaml", restart_monitors(monitors))
        with Vhost("storm") as vhost:
            contender = self.contender(kind, vhost, config)
            async with CommandReader(vhost.url) as reader:
                await contender.start()
                try:
                    await self.loadgen(vhost.relay_url, 0, monitors, monitors, 0, "warm")
                    await reader.wait_for(monitors, timeout=600)
                    rss_before = contender.rss_mb()
                    before = len(reader.received.commands)
                    started = time.monotonic()
                    await self.loadgen(vhost.relay_url, monitors, repeats, monitors, 0, "storm")
                    if kind == BARE:  # it answers every fault with a command
                        await reader.wait_for(monitors + repeats, timeout=900)
                    await _drained(vhost.url)
                    drain = time.monotonic() - started
                    await asyncio.sleep(2)  # commands still on their way would show now
                    rss_after = contender.rss_mb()
                finally:
                    contender.stop()
            return {
                "drain": repeats / drain,
                "extra": len(reader.received.commands) - before,
                "rss_before": rss_before,
                "rss_after": rss_after,
            }

    async def large_config(self) -> Figures:
        monitors, servers = self.n(10_000), max(2, self.n(1_000))
        config = self.config(f"large-{monitors}.yaml", large_cluster(monitors, servers))
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "mrwbus", "check-config", str(config)],
            check=True,
            capture_output=True,
        )
        check = time.monotonic() - started
        with Vhost("large") as vhost:
            contender = self.contender(MRWBUS, vhost, config)
            try:
                # Until it consumes faults: the topology, the leader lock and the journal. Agent
                # queues are declared before a server's first command, so none is made here.
                startup = await contender.start()
                await asyncio.sleep(2)  # the report requests to every server go out meanwhile
                queues = vhost.queues()
            finally:
                contender.stop()
        return {
            "check_config": check,
            "startup": startup,
            "queues": queues,
            "matching": _matching_costs(),
        }


@dataclass
class Segment:
    latencies: list[float]
    """Fault-to-command, ms, one per fault."""
    achieved: float
    """Faults per second from the first sent to the last command."""


def _latency_figures(segments: list[Segment]) -> Figures:
    latencies = sorted(ms for segment in segments for ms in segment.latencies)
    return {
        "achieved": min(segment.achieved for segment in segments),
        "faults": len(latencies),
        "p50": statistics.median(latencies),
        "p90": latencies[int(len(latencies) * 0.9) - 1],
        "p99": latencies[int(len(latencies) * 0.99) - 1],
        "max": latencies[-1],
    }


async def _drained(url: str) -> None:
    """Until the faults queue holds nothing ready (the last prefetch window still in flight is
    a few hundred ms at these rates)."""
    while (await faults_queue_state(url))[0] > 0:
        await asyncio.sleep(0.1)


def _matching_costs() -> dict[int, float]:
    """Microseconds per `MonitorIndex.match` at 10, 1,000 and 10,000 monitors."""
    from mrwbus.config.loading import parse_config
    from mrwbus.core.matching import MonitorIndex
    from mrwbus.messages import Category

    costs = {}
    for monitors in (10, 1_000, 10_000):
        servers = max(2, min(1_000, monitors // 10))
        config = parse_config(large_cluster(monitors, servers))
        index = MonitorIndex(config)
        probes = [
            (f"server{m % servers}", config.monitors[f"mrw{m}"].category, f"dev{m}")
            for m in range(0, monitors, max(1, monitors // 1000))
        ]
        rounds = max(1, 200_000 // len(probes))
        started = time.perf_counter()
        for _ in range(rounds):
            for server, category, device in probes:
                index.match(server, Category(category), device)
        costs[monitors] = (time.perf_counter() - started) / (rounds * len(probes)) * 1e6
    return costs


def _row(name: str, bare: str, mrwbus: str, ratio: str = "") -> str:
    return f"| {name} | {bare} | {mrwbus} | {ratio} |"


async def main(scale: float, only: set[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="mrwbus-bench-") as tmp:
        bench = Bench(scale, Path(tmp))
        rows = ["| phase | bare relay | mrwbus | mrwbus / bare |", "| --- | --- | --- | --- |"]

        def run(name: str) -> bool:
            return name in only or not only

        if run("recovery"):
            # First: the figure users feel. Its own table (four hops against a bare script).
            found = await recovery_rows(Path(tmp) / "recovery", bench.n(400), 8, [False, True])
            rows += found
        if run("saturated"):
            bare, ours = await bench.saturated(BARE), await bench.saturated(MRWBUS)
            rows.append(
                _row(
                    f"saturated, {bench.n(20_000):,} first faults",
                    f"{bare['throughput']:,.0f}/s",
                    f"{ours['throughput']:,.0f}/s",
                    f"{ours['throughput'] / bare['throughput']:.2f}x",
                )
            )
            print(rows[-1], flush=True)
        if run("latency"):
            for rate, segments in LATENCY_SEGMENTS:
                figures = await bench.latency(rate, segments)
                bare, ours = figures[BARE], figures[MRWBUS]

                def lat(f: Figures) -> str:
                    return (
                        f"{f['achieved']:,.0f}/s; p50 {f['p50']:.1f} ms, p90 {f['p90']:.1f} ms,"
                        f" p99 {f['p99']:.1f} ms, max {f['max']:.0f} ms"
                    )

                rows.append(
                    _row(
                        f"{rate:,.0f} faults/s offered ({segments} x"
                        f" {bench.n(int(rate * 10)) / rate:g} s each; {ours['faults']:,} faults)",
                        lat(bare),
                        lat(ours),
                        f"p99 {ours['p99'] / bare['p99']:.2f}x",
                    )
                )
                print(rows[-1], flush=True)
        if run("storm"):
            bare, ours = await bench.storm(BARE), await bench.storm(MRWBUS)

            def st(f: Figures, extra: bool) -> str:
                text = f"{f['drain']:,.0f}/s, RSS {f['rss_before']:.0f} -> {f['rss_after']:.0f} MB"
                return text + (f", {f['extra']} extra commands" if extra else "")

            rows.append(
                _row(
                    f"storm: {bench.n(50_000):,} faults for {bench.n(5_000):,} monitors in Error",
                    st(bare, False),
                    st(ours, True),
                    f"{ours['drain'] / bare['drain']:.2f}x",
                )
            )
            print(rows[-1], flush=True)
        if run("large"):
            large = await bench.large_config()
            costs = ", ".join(f"{m:,}: {us:.2f} µs" for m, us in large["matching"].items())
            rows.append(
                _row(
                    f"{bench.n(10_000):,} monitors on {max(2, bench.n(1_000)):,} servers",
                    "-",
                    f"check-config {large['check_config']:.2f} s; start-up"
                    f" {large['startup']:.2f} s ({large['queues']} queues declared);"
                    f" matching per fault {costs}",
                )
            )
            print(rows[-1], flush=True)
        print()
        print("\n".join(rows))


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the counts")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        choices=["recovery", "saturated", "latency", "storm", "large"],
        help="run only this phase (repeatable)",
    )
    args = parser.parse_args()
    asyncio.run(main(0.1 if args.quick else 1.0, set(args.only)))


if __name__ == "__main__":
    cli()
