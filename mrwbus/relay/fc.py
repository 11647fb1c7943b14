"""Fibre Channel HBAs from sysfs: `<sysfs>/class/fc_host/<host>/port_state`.

`Online` is healthy; anything else (`Linkdown`, `Offline`, `Blocked`, ...) is a fault of the
host. sysfs attributes do not notify inotify watchers, so the states are read every `poll`
seconds; the debounce then decides what counts.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from mrwbus.config.relay import Duration
from mrwbus.messages import Category
from mrwbus.relay.sources import Emit, Level, Source, SourceKind

ONLINE = "Online"


class FcSourceConfig(BaseModel):
    """`relay.fc`: Fibre Channel HBAs, from `<sysfs>/class/fc_host/<host>/port_state`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sysfs: str = "/sys"
    hosts: list[Annotated[str, Field(pattern=r"^host[0-9]+$")]] = Field(default_factory=list)
    """Empty: every fc_host found."""
    poll: Duration = timedelta(seconds=1)
    """sysfs attributes cannot be watched with inotify, so they are read this often."""


class FcSource:
    name = "fc"

    def __init__(self, config: FcSourceConfig) -> None:
        self.root = Path(config.sysfs) / "class" / "fc_host"
        self.hosts = list(config.hosts)
        self.poll = config.poll.total_seconds()

    def describe(self) -> str:
        which = ", ".join(self.hosts) if self.hosts else "every fc_host"
        return f"{which} in {self.root}, every {self.poll:g}s"

    def read(self) -> dict[str, str | None]:
        """Host -> port_state (None: the host or its attribute is missing)."""
        names = self.hosts or sorted(path.name for path in self.root.glob("host*") if path.is_dir())
        states: dict[str, str | None] = {}
        for name in names:
            try:
                states[name] = (self.root / name / "port_state").read_text().strip()
            except OSError:
                states[name] = None
        return states

    def levels(self) -> list[Level]:
        now = time.time()
        return [
            Level(
                "fc",
                Category.FC,
                host,
                state == ONLINE,
                f"port_state {state}" if state is not None else "fc_host not found",
                now,
            )
            for host, state in self.read().items()
        ]

    async def snapshot(self) -> list[str]:
        levels = self.levels()
        if not levels:
            return [f"fc: no fc_host in {self.root}"]
        return [f"fc {level.device}: {level.detail}" for level in levels]

    async def run(self, emit: Emit) -> None:
        while True:
            for level in self.levels():
                emit(level)
            await asyncio.sleep(self.poll)


def _build(config: FcSourceConfig) -> list[Source]:
    return [FcSource(config)]


KIND = SourceKind("fc", FcSourceConfig, _build)
