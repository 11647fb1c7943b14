"""Fault to group running on node2, on a real two-node Pacemaker: mrwbus (relay fault ->
service -> agent -> Pacemaker move) beside `ocf:heartbeat:ethmonitor` at its default monitor
interval (10 s) noticing the same loss of link by itself.

    python -m benchmarks.pacemaker            # 10 runs each (about 4 minutes)
    python -m benchmarks.pacemaker --runs 3

Both are timed the same way: from the moment of the loss (mrwbus: the fault published, as a
relay publishes it the moment the driver reports; ethmonitor: `ip link set ... down` on node1's
link) to the first `crm_mon` reading that shows every member of grp1 started on node2 (crm_mon
read every 50 ms from the host). Between runs the group goes back to node1 and everything
settles. Needs root, RabbitMQ on 127.0.0.1 (guest) and what tests/integration/pacemaker_cluster
needs.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mrwbus.bus.rpc import ask_service
from mrwbus.config.loading import parse_config
from mrwbus.messages import ControlRequest, ControlVerb, new_id
from mrwbus.relay import make_fault
from tests.integration.broker import BusProbe, create_vhost, delete_vhost, unique_vhost, vhost_url
from tests.integration.conftest import running_service
from tests.integration.pacemaker_cluster import GROUP, PacemakerCluster, start_agent
from tests.integration.test_pacemaker import CONFIG

NETNS_LINKS = {"node1": "bench1", "node2": "bench2"}
POLL = 0.05


def on_node2(cluster: PacemakerCluster) -> bool:
    unit = cluster.status().unit(GROUP)
    return unit is not None and unit.runs_wholly_on("node2")


def wait_node2(cluster: PacemakerCluster, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not on_node2(cluster):
        if time.monotonic() > deadline:
            raise SystemExit("grp1 never ran on node2")
        time.sleep(POLL)


async def mrwbus_runs(cluster: PacemakerCluster, runs: int) -> list[float]:
    vhost = unique_vhost()
    create_vhost(vhost)
    url = vhost_url(vhost)
    folder = Path(tempfile.mkdtemp(prefix="mrwbus-bench-"))
    config_file = folder / "cluster.yaml"
    config_file.write_text(CONFIG)
    agents = []
    times: list[float] = []
    try:
        async with (
            running_service(parse_config(CONFIG, "cluster.yaml"), url),
            BusProbe.open(url) as probe,
        ):
            for node in ("node1", "node2"):
                agents.append(await start_agent(cluster, node, config_file, url))
            await probe.wait_reports({"node1", "node2"}, timeout=30)
            for run in range(runs):
                await asyncio.to_thread(cluster.reset)
                await ask_service(
                    url,
                    ControlRequest(
                        id=new_id(), verb=ControlVerb.CLEAR, monitor="nic", reset_counts=True
                    ),
                )
                await asyncio.sleep(2)  # the agents' probes report grp1 on node1 again
                began = time.monotonic()
                await probe.publish(make_fault("node1", "NIC", "eth0", f"link down {run}"))
                await asyncio.to_thread(wait_node2, cluster)
                times.append(time.monotonic() - began)
                print(f"mrwbus run {run + 1}: {times[-1]:.2f} s", file=sys.stderr)
    finally:
        for agent in agents:
            if agent.returncode is None:
                agent.terminate()
                await agent.wait()
        delete_vhost(vhost)
        shutil.rmtree(folder, ignore_errors=True)
    return times


def ethmonitor_runs(cluster: PacemakerCluster, runs: int) -> list[float]:
    if shutil.which("arping") is None:  # ethmonitor will not start without it
        raise SystemExit("arping is missing: apt-get install iputils-arping")
    netns = cluster.env["BMC_SIM_NETNS"]
    ip = ["ip", "-n", netns, "link"]
    for node, link in NETNS_LINKS.items():
        # A veth pair (this kernel may have no dummy links); the peer stays up.
        cluster.tool(
            Path("/usr/bin/env"), *ip, "add", link, "type", "veth", "peer", "name", f"{link}p"
        )
        cluster.tool(Path("/usr/bin/env"), *ip, "set", f"{link}p", "up")
        cluster.tool(Path("/usr/bin/env"), *ip, "set", link, "up")
        cluster.crm(
            f"primitive ethmon-{node} ocf:heartbeat:ethmonitor params interface={link}"
            f" name=link-{link} link_status_only=true"
            " op monitor interval=10s timeout=60s"
        )
        cluster.crm(f"location ethmon-{node}-here ethmon-{node} inf: {node}")
    cluster.run(
        "crm", "configure", "location", "grp1-needs-link", GROUP,
        "rule", "-inf:", "#uname", "eq", "node1", "and", "link-bench1", "lte", "0",
        "rule", "-inf:", "#uname", "eq", "node2", "and", "link-bench2", "lte", "0",
    )  # fmt: skip
    times: list[float] = []
    for run in range(runs):
        cluster.tool(Path("/usr/bin/env"), *ip, "set", "bench1", "up")
        cluster.wait(lambda s: not s.failures, 60)
        cluster.reset_group_only()
        time.sleep(12)  # ethmonitor has seen the link up again, and a monitor is due anytime
        began = time.monotonic()
        cluster.tool(Path("/usr/bin/env"), *ip, "set", "bench1", "down")
        wait_node2(cluster)
        times.append(time.monotonic() - began)
        print(f"ethmonitor run {run + 1}: {times[-1]:.2f} s", file=sys.stderr)
    return times


def summary(name: str, times: list[float]) -> str:
    return (
        f"| {name} | {len(times)} | {statistics.median(times):.2f} s | {max(times):.2f} s"
        f" | {min(times):.2f} s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    cluster = PacemakerCluster.prepare()
    try:
        cluster.start()
        mrwbus = asyncio.run(mrwbus_runs(cluster, args.runs))
        ethmonitor = ethmonitor_runs(cluster, args.runs)
    finally:
        cluster.stop()
    print("| detected and moved by | runs | p50 | max | min |")
    print("| --- | --- | --- | --- | --- |")
    print(summary("mrwbus (relay fault -> Pacemaker move)", mrwbus))
    print(summary("ocf:heartbeat:ethmonitor, monitor interval 10s", ethmonitor))


if __name__ == "__main__":
    main()
