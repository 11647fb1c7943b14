"""What the core waits for between inputs: a failover under way, a fence under way, and the
fault facts every command carries; and what it knows of servers taken down. Plain frozen
values, journaled as they are (`core.records`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from mrwbus.messages import Category, FaultNotification, FenceAction, FinalAction


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


FenceCause = Literal["silent", "fence_first", "final_action", "operator"]
"""Why a server is fenced: it fell silent holding groups, a failover's source did not confirm
its stop, a monitor's BMC final action, or an operator's `mrwbus fence`."""


@dataclass(frozen=True)
class FenceIncident:
    """One fence of `target` through its BMC, driven by peers' agents until it is verified.

    Its id derives from what caused it, so a replica that takes over mid-fence, or a fault
    redelivered, finds the same incident and never fences twice for one cause."""

    id: str
    target: str
    action: FenceAction
    cause: FenceCause
    reason: str
    """Why, in words, for events and status."""
    recover_groups: bool
    """Once the fence is verified, the groups active on `target` fail over."""
    deadline: datetime
    """When the fencer asked must have answered, or when the next round of fencers starts."""
    monitor: str = "_"
    fault_id: str | None = None
    final_action: FinalAction | None = None
    """The monitor's BMC final action this fence carries out, if it is one."""
    fault: FaultFacts | None = None
    fencer: str | None = None
    """The peer whose agent was asked; None while waiting for the next round."""
    awaiting: str | None = None
    """The fence command the incident waits for."""
    tried: tuple[str, ...] = ()
    """The peers that failed in this round."""
    rounds: int = 0
    """Rounds in which every peer failed (the back-off doubles with each)."""


@dataclass(frozen=True)
class Down:
    """A server that nothing runs on any more: fenced, or taken down by a final action. It is no
    failover destination and no fencer until its agent reports again after `at`."""

    how: str
    at: datetime
    by: str
