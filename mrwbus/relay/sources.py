"""What a relay source reports, and the sources a server's settings ask for.

Two kinds of observation:
- a `Level` is the state of a device that lasts (a link up or down, an HBA online or not); the
  daemon debounces levels and turns a change that held into a fault or a recovery notice;
- a `Notice` is a single happening (a kernel-log line, a line from a program) and becomes a
  fault or a recovery notice at once.

Each source has a `name` that becomes part of the fault ids (`nic`, `fc`, `logs.<name>`,
`exec.<name>`), says in one line what it watches, shows what it sees now (`--once`), and runs
until cancelled, handing every observation to `emit`.

A kind of source is one module that declares a `SourceKind`: its key in the `relay:` section,
the pydantic model of that key (the configuration lives with its source), how the configured
section becomes sources, and any cross-check pydantic cannot make. `mrwbus.relay.registry`
lists the kinds; adding one is a module and a line there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from mrwbus.errors import ConfigIssue
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


def no_checks(section: Any, where: str) -> Iterator[ConfigIssue]:
    """For a kind whose model says everything."""
    return iter(())


@dataclass(frozen=True)
class SourceKind:
    """A kind of source, as its module declares it."""

    key: str
    """Its key under `relay:` (and `relay.servers.<name>:`)."""
    section: Any
    """The type of that key's value, validated by pydantic: a model, or `dict[Name, model]` for
    a kind configured by name (`logs`, `exec`)."""
    build: Callable[[Any], list[Source]]
    """The section as validated -> the sources it asks for (none is fine)."""
    empty: Any = None
    """What a server that does not configure the kind has (None, or `{}` for named kinds)."""
    check: Callable[[Any, str], Iterator[ConfigIssue]] = no_checks
    """Cross-checks of the validated section at its key path."""
