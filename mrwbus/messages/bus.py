"""Wire models about the bus itself: queue depths and dead letters.

They travel inside `StatusReport.bus` (the answer to `mrwbus status`) and inside
`ControlRequest.dead_letters` (an operator's dead-letter operation, recorded by the service
as an event). Kept apart from `mrwbus.messages` so that module stays about the domain.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class _Frozen(BaseModel):
    # Same rules as `messages.WireModel` (which imports this module, hence no shared base).
    model_config = ConfigDict(extra="forbid", frozen=True)


QueueRole = Literal["faults", "agent", "results", "control", "dead"]


class QueueDepth(_Frozen):
    """One queue as the service last read it."""

    queue: str = Field(description="The queue's name, e.g. `mrwbus.agent.server1`.")
    role: QueueRole = Field(description="faults, agent, results, control or dead.")
    server: str | None = Field(default=None, description="agent queues: the server.")
    ready: int = Field(description="Messages waiting to be delivered.")
    unacked: int | None = Field(
        default=None, description="Delivered, not yet acknowledged (management API only)."
    )
    consumers: int = Field(
        description="Consumers attached (an agent queue: 1 while its agent runs)."
    )
    oldest_age_seconds: float | None = Field(
        default=None, description="Age of the oldest message, where the broker says it."
    )
    stalled: bool = Field(
        default=False,
        description="agent queues: the queue grew while nobody consumed it.",
    )


class RecentDeadLetter(_Frozen):
    """A message this service dead-lettered, as the status page lists it."""

    at: datetime = Field(description="When it was dead-lettered.")
    reason: str = Field(description="Why, one sentence.")
    exchange: str = Field(description="The exchange it arrived on.")
    routing_key: str = Field(description="The routing key it arrived with.")
    message_id: str | None = Field(default=None, description="Its message id, if it had one.")


class BusReport(_Frozen):
    """The bus as the service last read it."""

    read_at: datetime = Field(description="When the queues were read.")
    queues: list[QueueDepth] = Field(description="Every queue of the service and its agents.")
    dead_letters: int = Field(description="Messages waiting in `mrwbus.dead`.")
    recent_dead_letters: list[RecentDeadLetter] = Field(
        default_factory=list, description="The last messages this service dead-lettered."
    )
    source: str = Field(
        description="`amqp` (passive declares: ready and consumers) or `management` (all)."
    )


DeadLetterOperation = Literal["list", "show", "replay", "purge"]


class DeadLetterNote(_Frozen):
    """What an operator did to `mrwbus.dead`, sent so the service records it as an event."""

    operation: DeadLetterOperation = Field(description="list, show, replay or purge.")
    count: int = Field(ge=0, description="Dead letters listed, shown, replayed or purged.")
    selection: str = Field(
        default="", max_length=500, description="What was asked for: ids, --reason, --before."
    )


class DeadLetterReplay(_Frozen):
    """Which dead letters the service must replay (`mrwbus dead replay`): by id prefix, and
    every one whose reason contains `reason` (any case)."""

    ids: list[Annotated[str, StringConstraints(min_length=6, max_length=64)]] = Field(
        default_factory=list, max_length=1000, description="Ids, or unique prefixes of them."
    )
    reason: str | None = Field(
        default=None, max_length=500, description="Every dead letter whose reason contains this."
    )
