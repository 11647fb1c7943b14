"""What the core waits for between inputs: a failover under way, and the fault facts every
command of it carries. Plain frozen values, journaled as they are (`core.records`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from mrwbus.messages import Category, FaultNotification


@dataclass(frozen=True)
class FaultFacts:
    """What the fault said, carried by every command it causes so handlers can read it."""

    category: Category
    device: str
    message: str

    @classmethod
    def of(cls, fault: FaultNotification) -> FaultFacts:
        return cls(fault.category, fault.device, fault.message)


class Phase(StrEnum):
    STOPPING = "stopping"  # waiting for the source to confirm the stop
    FENCING = "fencing"  # waiting for the source to confirm the final action
    STARTING = "starting"  # waiting for the destination to confirm the start


@dataclass(frozen=True)
class FailoverInProgress:
    group: str
    monitor: str
    fault_id: str
    from_server: str
    to_server: str
    phase: Phase
    awaiting: str
    """The id of the command whose result moves this failover on."""
    deadline: datetime
    tried: tuple[str, ...] = ()
    before_script: str | None = None
    fault: FaultFacts | None = None
    """What the fault said, passed on to every step's command."""
