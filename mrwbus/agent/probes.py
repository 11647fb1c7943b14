"""Probes: the agent asks the system whether a group really runs on its server.

A probe is any `async def probe(group: str)` returning True (running), False (not running),
or None (cannot tell: the group's state stays as the agent's journal remembers it). The
reference agent's probe is a command line (`agent.handlers.probe`, or a group's own in
`agent.groups.<group>.probe`), e.g. `systemctl is-active --quiet postgresql`: exit status 0
means running, any other exit status not running, a timeout cannot tell.

The agent runs its probes at start, after every command and every `agent.probe_interval`, and
reports what they see (`AgentReport.probed_groups`): the service's placement follows the facts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeAlias

from mrwbus.agent.shell import KILL_GRACE, run_shell
from mrwbus.config.model import HandlerConfig
from mrwbus.messages import Outcome

log = logging.getLogger(__name__)

Probe: TypeAlias = Callable[[str], Awaitable[bool | None]]


class ShellProbe:
    """A probe command line, run with MRWBUS_SERVER, MRWBUS_GROUP and MRWBUS_ACTION=probe."""

    def __init__(self, run: str, timeout: float, server: str) -> None:
        self.run = run
        self.timeout = timeout
        self.server = server

    @classmethod
    def from_config(cls, config: HandlerConfig, server: str) -> ShellProbe:
        return cls(config.run, config.timeout.total_seconds(), server)

    async def __call__(self, group: str) -> bool | None:
        variables = {"MRWBUS_SERVER": self.server, "MRWBUS_GROUP": group, "MRWBUS_ACTION": "probe"}
        result = await run_shell(self.run, variables, self.timeout, kill_grace=KILL_GRACE)
        if result.outcome is Outcome.SUCCEEDED:
            return True
        if result.outcome is Outcome.TIMED_OUT:
            log.warning("probe of %s on %s timed out: cannot tell", group, self.server)
            return None
        return False

    def __repr__(self) -> str:
        return f"ShellProbe({self.run!r}, timeout={self.timeout:g})"


class ProbeTable:
    """Probes, generic and per group; a group's own wins."""

    def __init__(self) -> None:
        self.generic: Probe | None = None
        self.by_group: dict[str, Probe] = {}

    def add(self, probe: Probe, group: str | None = None) -> None:
        if group is None:
            self.generic = probe
        else:
            self.by_group[group] = probe

    def find(self, group: str) -> Probe | None:
        return self.by_group.get(group, self.generic)

    def __bool__(self) -> bool:
        return self.generic is not None or bool(self.by_group)

    async def run(self, groups: Iterable[str]) -> dict[str, bool]:
        """What the probes see for `groups`: group -> running; groups without a probe, or whose
        probe could not tell (or raised), are left out."""
        names = sorted({group for group in groups if self.find(group) is not None})
        seen = await asyncio.gather(*(_ask(self.find(g), g) for g in names))
        return {
            group: running
            for group, running in zip(names, seen, strict=True)
            if running is not None
        }


async def _ask(probe: Probe | None, group: str) -> bool | None:
    assert probe is not None
    try:
        return await probe(group)
    except Exception as exc:  # a probe's failure says nothing about the group
        log.warning("probe of %s failed: %s", group, exc)
        return None


def groups_probed(believed: frozenset[str], seen: dict[str, bool]) -> frozenset[str]:
    """The active groups once the probes' facts replace the belief for the groups they saw."""
    return frozenset(
        {group for group in believed if seen.get(group, True)}
        | {group for group, running in seen.items() if running}
    )
