"""Simulated BMCs on 127.0.0.1 (`shared/tools/bmc-sim`), one per server, that the real
`fence_ipmilan` drives; their request logs say what they were asked and when."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

BMC_SIM = Path(__file__).resolve().parents[1] / "tools" / "bmc-sim"
"""A copy of the workplace's shared/tools/bmc-sim (and its two simulators), kept with the tests."""
USER, PASSWORD = "admin", "bmc-secret-1"


def free_port(kind: socket.SocketKind = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Bmcs:
    """One BMC per server, IPMI unless named in `redfish`; `stop_all` at the end removes
    every trace."""

    folder: Path
    ports: dict[str, int]
    redfish: set[str] = field(default_factory=set)

    @classmethod
    def start(
        cls, folder: Path, servers: list[str], *, redfish: frozenset[str] = frozenset()
    ) -> Bmcs:
        missing = [tool for tool in ("fence_ipmilan", "ipmitool") if not _which(tool)]
        assert not missing, f"install Debian's fence-agents and ipmitool: {missing} not found"
        assert BMC_SIM.exists(), f"{BMC_SIM} is missing"
        ports = {
            server: free_port(socket.SOCK_STREAM if server in redfish else socket.SOCK_DGRAM)
            for server in servers
        }
        bmcs = cls(folder, ports, set(redfish))
        for server in servers:
            bmcs.power_up(server)
        return bmcs

    def _run(self, *args: str) -> str:
        env = {**os.environ, "BMC_SIM_DIR": str(self.folder / "sim")}
        if args[0] == "start-redfish":  # sushy-tools is a test requirement of this Python
            env["BMC_SIM_PYTHON"] = sys.executable
        done = subprocess.run(
            [str(BMC_SIM), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"bmc-sim {' '.join(args)}: {done.stderr}"
        return done.stdout

    def power_up(self, server: str) -> None:
        """Start (or restart) the server's BMC; the power is on."""
        kind = "start-redfish" if server in self.redfish else "start-ipmi"
        self._run(kind, server, str(self.ports[server]), USER, PASSWORD)

    def unplug(self, server: str) -> None:
        """The BMC stops answering (its network is gone)."""
        self._run("stop", server)

    def power(self, server: str) -> str:
        return self._run("power", server).strip()

    def log(self, server: str) -> list[tuple[datetime, str]]:
        """(when, request) for every request the BMC got, oldest first."""
        found = []
        for line in self._run("log", server).splitlines():
            when, _, rest = line.partition(" ")
            found.append((datetime.fromisoformat(when), rest))
        return found

    def power_offs(self, server: str) -> list[datetime]:
        return [
            when
            for when, request in self.log(server)
            if "power_off" in request or "ResetType=ForceOff" in request
        ]

    def stop_all(self) -> None:
        self._run("stop-all")

    def yaml(self, server: str, *, fenced_by: str = "") -> str:
        password_file = self.folder / "secrets" / server
        password_file.parent.mkdir(parents=True, exist_ok=True)
        password_file.write_text(PASSWORD + "\n")
        password_file.chmod(0o600)
        extra = f", fenced_by: [{fenced_by}]" if fenced_by else ""
        agent, options = (
            ("fence_redfish", "{ssl_insecure: '1'}")
            if server in self.redfish
            else ("fence_ipmilan", "{lanplus: '1'}")
        )
        return (
            f"{{bmc: {{fence_agent: {agent}, address: 127.0.0.1, port: {self.ports[server]},"
            f" username: {USER}, password_file: {password_file}, options: {options},"
            f" timeout: 20s{extra}}}}}"
        )


def _which(tool: str) -> str | None:
    return shutil.which(tool, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
