"""Helpers for the OCF integration tests: the installed agents, network namespaces standing in
for each server's network, the mrwbus command run once, and docs/resources.md's configuration.

Both "servers" run on this machine, so each gets what a real server has of its own: a network
namespace for `vip` (IPaddr2's own `network_namespace` parameter) and state files for the
Dummy agents, given as per-server parameters.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mrwbus.ocf.contract import DEFAULT_OCF_ROOT

VIP = "192.0.2.50"
NEEDED_AGENTS = ("heartbeat/Dummy", "heartbeat/IPaddr2", "heartbeat/symlink", "pacemaker/Dummy")


def require_agents() -> None:
    """Fail, never skip, when the agents the tests run are not installed."""
    root = os.environ.get("OCF_ROOT") or DEFAULT_OCF_ROOT
    missing = [a for a in NEEDED_AGENTS if not os.access(f"{root}/resource.d/{a}", os.X_OK)]
    if missing:
        pytest.fail(
            f"OCF agents missing under {root}/resource.d: {', '.join(missing)}; install "
            "Debian's resource-agents and pacemaker (.ci/run does)",
            pytrace=False,
        )


@dataclass(frozen=True)
class Namespaces:
    """One network namespace per server, made for one test and removed after it."""

    names: dict[str, str]

    def addresses(self, server: str) -> str:
        done = subprocess.run(
            ["ip", "-n", self.names[server], "-4", "addr", "show", "dev", "lo"],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout


def namespaces(servers: list[str]) -> Iterator[Namespaces]:
    tag = uuid.uuid4().hex[:8]
    names = {server: f"mrw{tag}{server}" for server in servers}
    made: list[str] = []
    try:
        for name in names.values():
            subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
            made.append(name)
        yield Namespaces(names)
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


@dataclass(frozen=True)
class Ran:
    status: int
    stdout: str
    stderr: str


async def mrwbus(*argv: str, cwd: Path) -> Ran:
    """The real `mrwbus` command, once."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mrwbus",
        *argv,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


def walkthrough_yaml(state: Path, ns: Namespaces) -> str:
    """docs/resources.md's two-server example, with per-server namespaces and state files."""
    return f"""
servers: {{db1: {{}}, db2: {{}}}}
security: {{verify_senders: false}}
groups:
  pg: {{servers: [db1, db2], resources: [vip, data, postgres]}}
  app: {{servers: [db1, db2], resources: [appdata, applink]}}
resources:
  vip:
    ocf: heartbeat:IPaddr2
    params: {{ip: {VIP}, cidr_netmask: 32, nic: lo}}
    servers:
      db1: {{params: {{network_namespace: {ns.names["db1"]}}}}}
      db2: {{params: {{network_namespace: {ns.names["db2"]}}}}}
  data:
    ocf: heartbeat:Dummy
    servers:
      db1: {{params: {{state: {state}/db1-data.state}}}}
      db2: {{params: {{state: {state}/db2-data.state}}}}
  postgres:
    ocf: ocf:pacemaker:Dummy
    timeouts: {{start: 60s, stop: 60s, monitor: 20s}}
    servers:
      db1: {{params: {{state: {state}/db1-postgres.state, envfile: {state}/db1-postgres.env}}}}
      db2: {{params: {{state: {state}/db2-postgres.state, envfile: {state}/db2-postgres.env}}}}
  appdata:
    ocf: heartbeat:Dummy
    servers:
      db1: {{params: {{state: {state}/db1-appdata.state}}}}
      db2: {{params: {{state: {state}/db2-appdata.state}}}}
  applink:
    ocf: heartbeat:symlink
    params: {{target: /etc/hostname}}
    servers:
      db1: {{params: {{link: {state}/db1-app.link}}}}
      db2: {{params: {{link: {state}/db2-app.link}}}}
service:
  stop_timeout: 20s
  start_timeout: 30s
  heartbeat_timeout: 4s
monitors:
  nic:
    category: NIC
    keyword: eth0
    recovery: {{action: failover, target: pg}}
  sps:
    category: SPS
    recovery: {{action: restart, target: pg}}
  am:
    category: HA/AM
    recovery: {{action: restart, target: postgres}}
  fc:
    category: FC
    recovery: {{action: failover, target: app}}
agent:
  heartbeat_interval: 1s
  probe_interval: 1s
  state_dir: agent-state
"""


def agent_actions(envfile: Path) -> list[str]:
    """The actions pacemaker:Dummy itself recorded (`envfile`), monitors left out."""
    if not envfile.exists():
        return []
    return [
        line.split()[1]
        for line in envfile.read_text().splitlines()
        if line.startswith("### ") and line.split()[1] != "monitor"
    ]
