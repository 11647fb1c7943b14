"""How long a hung server's group is down: the real service and agents, the real fence_ipmilan
against simulated IPMI BMCs (tests/tools/bmc-sim), the local broker.

    python -m benchmarks.fencing [--runs 5]

Each run freezes server1's agent (SIGSTOP: its connection stays open, it answers nothing) while
server1 runs the group, and times from the freeze: the service calls server1 silent (MRW-601),
a peer's fence is under way (MRW-1001), the BMC reports the power off (MRW-1002), and the group
runs on server2 (MRW-320). It prints the phases, the BMC's power-offs (one per incident), and
whether any start preceded the power-off. The service's settings are the test cluster's:
heartbeat_timeout 3 s, agents' heartbeat 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from tests.integration.bmc import Bmcs
from tests.integration.broker import BusProbe, create_vhost, delete_vhost, unique_vhost, vhost_url
from tests.integration.processes import Processes
from tests.integration.test_fencing import SERVERS, Cluster, cluster_yaml

PHASES = (("silent", "MRW-601"), ("fence started", "MRW-1001"), ("fenced", "MRW-1002"))


async def one_run(folder: Path) -> dict[str, float]:
    vhost = unique_vhost()
    create_vhost(vhost)
    url = vhost_url(vhost)
    bmcs = Bmcs.start(folder, SERVERS)
    processes = Processes(folder / "cluster.yaml", folder, url)
    try:
        (folder / "cluster.yaml").write_text(cluster_yaml(bmcs))
        async with BusProbe.open(url) as probe:
            await processes.service()
            for server in SERVERS:
                await processes.agent(server)
            await probe.wait_reports(set(SERVERS))
            await asyncio.sleep(2)  # every agent heard from, the service settled
            cluster = Cluster(processes, bmcs, folder)
            loop = asyncio.get_running_loop()
            frozen = loop.time()
            cluster.freeze("server1")
            times: dict[str, float] = {}
            for name, code in PHASES:
                await probe.wait_event(code, timeout=60, server="server1")
                times[name] = loop.time() - frozen
            await cluster.power_lost("server1")
            await probe.wait_event("MRW-320", timeout=60, group="app")
            times["running on server2"] = loop.time() - frozen
            cluster.assert_started_only_after_the_power_off("server1", "server2")
            times["power-offs"] = len(bmcs.power_offs("server1"))
            return times
    finally:
        await processes.stop_all()
        bmcs.stop_all()
        delete_vhost(vhost)


async def main(runs: int) -> None:
    found = []
    for run in range(runs):
        with tempfile.TemporaryDirectory(prefix="mrwbus-fencing-") as folder:
            times = await one_run(Path(folder))
        found.append(times)
        print(f"run {run + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in times.items()))
    print(f"\nfrom the freeze, over {runs} runs (s): median / max")
    for name in (*(name for name, _ in PHASES), "running on server2"):
        values = [times[name] for times in found]
        print(f"  {name:<20} {statistics.median(values):6.2f} / {max(values):6.2f}")
    print(f"  power-offs per incident: {sorted({times['power-offs'] for times in found})}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
