"""NIC links from netlink: the kernel tells of every change (RTM_NEWLINK / RTM_DELLINK).

A watched interface is healthy while it has carrier and its operstate is not DOWN,
LOWERLAYERDOWN or NOTPRESENT; a bond or a VLAN is watched under its own name like any other
link. The relay subscribes before it reads the current state, so no change falls in between.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from mrwbus.messages import Category
from mrwbus.relay.sources import Emit, Level, Source, SourceKind

IFNAME_PATTERN = r"^[^\s/:]{1,15}$"
"""A Linux interface name: at most 15 bytes (IFNAMSIZ - 1), no blank, `/` or `:`."""

InterfaceName = Annotated[str, Field(pattern=IFNAME_PATTERN)]


class NicSourceConfig(BaseModel):
    """`relay.nic`: interfaces watched over netlink; bonds and VLANs are devices of their own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interfaces: list[InterfaceName] = Field(default_factory=list)


UNHEALTHY_OPERSTATES = frozenset({"DOWN", "LOWERLAYERDOWN", "NOTPRESENT"})


def link_level(message: Any, at: float) -> Level:
    """A netlink link message as the level of its interface."""
    name = str(message.get("ifname"))
    if message["event"] == "RTM_DELLINK":
        return Level("nic", Category.NIC, name, False, "interface removed", at)
    carrier = message.get("carrier")
    operstate = str(message.get("operstate") or "UNKNOWN")
    healthy = carrier != 0 and operstate not in UNHEALTHY_OPERSTATES
    detail = f"carrier {'?' if carrier is None else carrier}, operstate {operstate}"
    return Level("nic", Category.NIC, name, healthy, detail, at)


class NicSource:
    name = "nic"

    def __init__(self, config: NicSourceConfig) -> None:
        self.interfaces = list(config.interfaces)

    def describe(self) -> str:
        return f"interfaces {', '.join(self.interfaces)} over netlink"

    async def _current(self, route: Any) -> dict[str, Level]:
        now = time.time()
        found: dict[str, Level] = {}
        async for message in await route.link("dump"):
            level = link_level(message, now)
            if level.device in self.interfaces:
                found[level.device] = level
        for name in self.interfaces:
            found.setdefault(
                name, Level("nic", Category.NIC, name, False, "no such interface", now)
            )
        return found

    async def snapshot(self) -> list[str]:
        from pyroute2 import AsyncIPRoute  # imported when used: the CLI loads this module

        async with AsyncIPRoute() as route:
            current = await self._current(route)
        return [
            f"nic {name}: {'up' if current[name].healthy else 'DOWN'} ({current[name].detail})"
            for name in self.interfaces
        ]

    async def run(self, emit: Emit) -> None:
        from pyroute2 import AsyncIPRoute

        async with AsyncIPRoute() as route:
            await route.bind()
            for level in (await self._current(route)).values():
                emit(level)
            while True:
                async for message in route.get():
                    if message.get("event") not in ("RTM_NEWLINK", "RTM_DELLINK"):
                        continue
                    level = link_level(message, time.time())
                    if level.device in self.interfaces:
                        emit(level)


def _build(config: NicSourceConfig) -> list[Source]:
    return [NicSource(config)] if config.interfaces else []


KIND = SourceKind("nic", NicSourceConfig, _build)
