"""What a relay source reports, and the sources a server's settings ask for.

Two kinds of observation:
- a `Level` is the state of a device that lasts (a link up or down, an HBA online or not); the
  daemon debounces levels and turns a change that held into a fault or a recovery notice;
- a `Notice` is a single happening (a kernel-log line, a line from a program) and becomes a
  fault or a recovery notice at once.

Each source has a `name` that becomes part of the fault ids (`nic`, `fc`, `logs.<name>`,
`exec.<name>`), says in one line what it watches, shows what it sees now (`--once`), and runs
until cancelled, handing every observation to `emit`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from mrwbus.config.relay import RelaySettings
from mrwbus.messages import Category

State = Literal["error", "recovered"]


@dataclass(frozen=True)
class Level:
    source: str
    category: Category
    device: str
    healthy: bool
    detail: str
    at: float
    """When it was seen, in seconds since the epoch."""

    @property
    def key(self) -> str:
        return f"{self.source}/{self.device}"


@dataclass(frozen=True)
class Notice:
    source: str
    category: Category
    device: str
    state: State
    message: str
    at: float
    unique: str = ""
    """What tells two notices of one device at one time apart (a kmsg sequence number, the line)."""


Observation = Level | Notice
Emit = Callable[[Observation], None]


class Source(Protocol):
    name: str

    def describe(self) -> str:
        """What it watches, for the log line at start."""
        ...

    async def snapshot(self) -> list[str]:
        """What it sees now, one line per device, for `mrwbus relay --once`."""
        ...

    async def run(self, emit: Emit) -> None:
        """Watch until cancelled."""
        ...


def build_sources(settings: RelaySettings) -> list[Source]:
    """The sources configured for a server, in a fixed order: nic, fc, logs, exec."""
    from mrwbus.relay.fc import FcSource
    from mrwbus.relay.logfile import LogSource
    from mrwbus.relay.nic import NicSource
    from mrwbus.relay.program import ProgramSource

    sources: list[Source] = []
    if settings.nic is not None and settings.nic.interfaces:
        sources.append(NicSource(settings.nic))
    if settings.fc is not None:
        sources.append(FcSource(settings.fc))
    sources += [LogSource(name, config) for name, config in settings.logs.items()]
    sources += [ProgramSource(name, config) for name, config in settings.exec.items()]
    return sources
