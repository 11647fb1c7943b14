"""Pacemaker's command-line tools, run by the agent on its own node: crm_mon, cibadmin,
crm_resource, crm_attribute, crmadmin and stonith_admin. Each runs with a timeout, in a
process group of its own that is killed on timeout, stdout kept whole (crm_mon's XML)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass

from mrwbus.agent.pacemaker.crm_mon import ClusterStatus, Location, parse_constraints, parse_crm_mon
from mrwbus.agent.pacemaker.operations import FenceHow, move_constraint_id, move_constraint_xml
from mrwbus.errors import ContractError

SEARCH_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"
QUICK = 15.0
"""Seconds a query (crm_mon, cibadmin, crmadmin) may take."""


class PacemakerError(Exception):
    """A Pacemaker tool failed; the text is what it said, for the result's detail."""


@dataclass(frozen=True)
class Ran:
    status: int | None
    stdout: str
    stderr: str

    def words(self) -> str:
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return text[-1][-300:] if text else ""


async def run(argv: Sequence[str], timeout: float) -> Ran:
    path = os.environ.get("PATH", "")
    env = {**os.environ, "PATH": f"{path}:{SEARCH_PATH}" if path else SEARCH_PATH}
    env.pop("MRWBUS_AMQP_URL", None)
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        await _kill(process)
        return Ran(None, "", f"{argv[0]} timed out after {timeout:g} s")
    except BaseException:
        await _kill(process)  # cancelled: leave nothing behind
        raise
    return Ran(process.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace"))


async def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    await process.wait()


async def checked(argv: Sequence[str], timeout: float = QUICK) -> Ran:
    ran = await run(argv, timeout)
    if ran.status != 0:
        raise PacemakerError(f"{' '.join(argv[:2])}: {ran.words() or f'exit {ran.status}'}")
    return ran


class PacemakerCli:
    """The operations the backend needs, each one Pacemaker command."""

    async def status(self) -> ClusterStatus:
        ran = await checked(["crm_mon", "-1", "--output-as=xml"])
        try:
            return parse_crm_mon(ran.stdout)
        except ContractError as exc:
            raise PacemakerError(str(exc)) from None

    async def constraints(self) -> tuple[Location, ...]:
        ran = await checked(["cibadmin", "--query", "--scope", "constraints"])
        try:
            return parse_constraints(ran.stdout)
        except ContractError as exc:
            raise PacemakerError(str(exc)) from None

    async def idle(self, dc: str | None) -> bool:
        """Whether the DC has no transition running: Pacemaker is not acting."""
        if dc is None:
            return False
        ran = await run(["crmadmin", "--quiet", "--status", dc, "--timeout", "5000"], QUICK)
        return "S_IDLE" in ran.stdout + ran.stderr

    async def place(self, resource: str, node: str) -> None:
        """mrwbus's move constraint: created, or replaced where it exists (idempotent)."""
        await checked(
            ["cibadmin", "--modify", "--allow-create", "--scope", "constraints",
             "--xml-text", move_constraint_xml(resource, node)]
        )  # fmt: skip

    async def unplace(self, resource: str) -> None:
        """Remove mrwbus's move constraint (nothing when there is none)."""
        xml = f'<rsc_location id="{move_constraint_id(resource)}"/>'
        ran = await run(
            ["cibadmin", "--delete", "--scope", "constraints", "--xml-text", xml], QUICK
        )
        if ran.status not in (0, 105):  # 105: no such object
            raise PacemakerError(f"cibadmin --delete: {ran.words() or f'exit {ran.status}'}")

    async def restart(self, resource: str, timeout: float) -> None:
        seconds = max(1, int(timeout))
        await checked(
            ["crm_resource", "--restart", "--resource", resource, f"--timeout={seconds}s"],
            timeout + 5,
        )

    async def target_role(self, resource: str, role: str) -> None:
        await checked(
            ["crm_resource", "--resource", resource, "--meta",
             "--set-parameter", "target-role", "--parameter-value", role]
        )  # fmt: skip

    async def standby(self, node: str) -> None:
        await checked(
            ["crm_attribute", "--node", node, "--name", "standby", "--update", "on",
             "--lifetime", "forever"]
        )  # fmt: skip

    async def fence(self, node: str, how: FenceHow, timeout: float) -> str:
        flag = "--fence" if how is FenceHow.OFF else "--reboot"
        seconds = max(1, int(timeout))
        ran = await checked(["stonith_admin", flag, node, "--timeout", str(seconds)], timeout + 5)
        history = await run(["stonith_admin", "--history", node], QUICK)
        return history.stdout.strip().splitlines()[-1] if history.stdout.strip() else ran.words()
