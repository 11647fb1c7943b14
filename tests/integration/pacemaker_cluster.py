"""A real two-node Pacemaker cluster for the tests (`tests/tools/pacemaker-cluster`, a copy of
the workplace's shared tool): a group of `ocf:pacemaker:Dummy` resources, stonith through
`fence_ipmilan` to simulated BMCs in the cluster's network namespace, and mrwbus agents run
inside the nodes (`exec --host-net`, so they reach RabbitMQ on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from mrwbus.agent.pacemaker.crm_mon import ClusterStatus, parse_constraints, parse_crm_mon

TOOLS = Path(__file__).resolve().parents[1] / "tools"
PCMK = TOOLS / "pacemaker-cluster"
BMC_SIM = TOOLS / "bmc-sim"
NODES = ("node1", "node2")
BMC_PORTS = {"node1": 6231, "node2": 6232}
BMC_USER, BMC_PASSWORD = "admin", "secret"
GROUP = "grp1"
NEEDED = ("corosync", "pacemakerd", "crm_mon", "crm", "stonith_admin", "fence_ipmilan", "ip")


def require_pacemaker() -> None:
    """Fail, never skip, when what the tests run is not installed."""
    path = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
    missing = [tool for tool in NEEDED if shutil.which(tool, path=path) is None]
    assert not missing, (
        f"{', '.join(missing)} not found: apt-get install -y --no-install-recommends pacemaker "
        "corosync crmsh pacemaker-cli-utils resource-agents fence-agents python3-pyghmi iproute2"
    )
    assert os.geteuid() == 0, "the Pacemaker tests start a cluster, which needs root"


@dataclass
class PacemakerCluster:
    folder: Path
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def prepare(cls) -> PacemakerCluster:
        # Not under pytest's tmp_path: its folders are root's alone (0700), and Pacemaker's
        # daemons write their logs in the node's folder as hacluster.
        folder = Path(tempfile.mkdtemp(prefix="mrwbus-pcmk-"))
        folder.chmod(0o755)
        env = {
            **os.environ,
            "PCMK_CLUSTER_DIR": str(folder / "pcmk"),
            "BMC_SIM_DIR": str(folder / "bmc"),
        }
        return cls(folder, env)

    def start(self) -> None:
        require_pacemaker()
        self.tool(PCMK, "start", "2", timeout=120)
        self.env["BMC_SIM_NETNS"] = self.tool(PCMK, "netns").strip()
        for node, port in BMC_PORTS.items():
            self.tool(BMC_SIM, "start-ipmi", node, str(port), BMC_USER, BMC_PASSWORD)
        self.configure()

    def tool(self, tool: Path, *args: str, timeout: float = 60, check: bool = True) -> str:
        done = subprocess.run(
            [str(tool), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check:
            assert done.returncode == 0, f"{tool.name} {' '.join(args)}: {done.stderr}"
        return done.stdout

    def run(self, *argv: str, node: str = "node2", check: bool = True) -> str:
        return self.tool(PCMK, "exec", node, *argv, check=check)

    def crm(self, line: str) -> None:
        self.run("crm", "configure", *line.split())

    def configure(self) -> None:
        self.crm("rsc_defaults resource-stickiness=100")
        for name in ("d1", "d2"):
            self.crm(f"primitive {name} ocf:pacemaker:Dummy op monitor interval=2s")
        self.crm(f"group {GROUP} d1 d2")
        for node, port in BMC_PORTS.items():
            self.crm(
                f"primitive fence-{node} stonith:fence_ipmilan params ip=127.0.0.1 ipport={port}"
                f" username={BMC_USER} password={BMC_PASSWORD} lanplus=1 pcmk_host_list={node}"
            )
            self.crm(f"location fence-{node}-away fence-{node} -inf: {node}")
        self.run(
            "crm_attribute", "--type", "crm_config", "--name", "stonith-enabled", "--update", "true"
        )
        self.wait(lambda s: s.unit(GROUP) is not None and s.unit(GROUP).runs_wholly_on("node1"), 30)  # type: ignore[union-attr]

    def status(self, node: str = "node2") -> ClusterStatus:
        return parse_crm_mon(self.run("crm_mon", "-1", "--output-as=xml", node=node))

    def where(self) -> frozenset[str]:
        unit = self.status().unit(GROUP)
        assert unit is not None
        return unit.nodes

    def wait(self, condition, timeout: float = 30):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if condition(status):
                return status
            assert time.monotonic() < deadline, f"crm_mon never showed it: {status}"
            time.sleep(0.2)

    def constraint_ids(self) -> list[str]:
        return [c.id for c in parse_constraints(self.run("cibadmin", "-Q", "-o", "constraints"))]

    def reset(self) -> None:
        """Between tests: no ban, no standby, no target-role, no failures, grp1 on node1."""
        for cid in self.constraint_ids():
            if not cid.startswith("fence-"):
                self.run(
                    "cibadmin",
                    "-D",
                    "-o",
                    "constraints",
                    "--xml-text",
                    f'<rsc_location id="{cid}"/>',
                )
        self.run("crm_attribute", "--node", "node1", "--name", "standby", "--delete", check=False)
        self.run("crm_resource", "-r", GROUP, "--meta", "-d", "target-role", check=False)
        self.run("crm_resource", "--cleanup")
        if self.where() != {"node1"}:
            self.run("crm_resource", "-r", GROUP, "--move", "--node", "node1")
            self.wait(lambda s: s.unit(GROUP).runs_wholly_on("node1"))  # type: ignore[union-attr]
            self.run("crm_resource", "-r", GROUP, "--clear")
        self.wait(lambda s: not s.failures and s.unit(GROUP).runs_wholly_on("node1"))  # type: ignore[union-attr]

    def reset_group_only(self) -> None:
        """grp1 back on node1 and nothing else touched (the benchmark's own constraints stay)."""
        self.run("crm_resource", "--cleanup")
        if self.where() != {"node1"}:
            self.run("crm_resource", "-r", GROUP, "--move", "--node", "node1")
            self.wait(lambda s: s.unit(GROUP).runs_wholly_on("node1"))  # type: ignore[union-attr]
            self.run("crm_resource", "-r", GROUP, "--clear")

    def starts_on(self, node: str, resource: str = "d1") -> int:
        """How many times Pacemaker started `resource` on `node`, from that node's log."""
        log = Path(self.env["PCMK_CLUSTER_DIR"]) / node / "pacemaker.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        found = re.findall(
            rf"Result of start operation for {resource} on {node}: (\w+)", text, re.I
        )
        return sum(1 for outcome in found if outcome.lower() == "ok")

    def bmc_log(self, node: str) -> str:
        return self.tool(BMC_SIM, "log", node)

    def stop(self) -> None:
        self.tool(BMC_SIM, "stop-all", check=False)
        self.tool(PCMK, "stop", timeout=120, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


async def start_agent(
    cluster: PacemakerCluster, node: str, config: Path, amqp_url: str
) -> asyncio.subprocess.Process:
    """`mrwbus agent` for `node`, run inside the node's context (it dies with the node)."""
    log = (config.parent / f"agent-{node}.log").open("ab")
    env = {**cluster.env, "MRWBUS_AMQP_URL": amqp_url, "PYTHONUNBUFFERED": "1"}
    process = await asyncio.create_subprocess_exec(
        str(PCMK), "exec", "--host-net", node,
        sys.executable, "-m", "mrwbus", "agent", "--server", node, "--config", str(config),
        cwd=config.parent, env=env, stdout=log, stderr=log,
    )  # fmt: skip
    log.close()
    return process
