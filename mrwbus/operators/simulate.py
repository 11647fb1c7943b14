"""`mrwbus simulate`: what a fault would do, from a given cluster state, with no broker.

Runs the very function the service's monitor actors run (`ClusterState.handle_fault`) and
prints the `Decision` it returns as it is: the ladder step it took (or why none), its commands
and its events. So a configuration change can be checked before it goes live, like an alert
router's routing tests, and what `simulate` says is what the service does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mrwbus.config.model import ClusterConfig
from mrwbus.core.cluster import ClusterState
from mrwbus.core.decision import Decision
from mrwbus.core.matching import FaultRoute, MonitorIndex, route_fault
from mrwbus.core.monitor import MonitorServerState, Status
from mrwbus.errors import ContractError
from mrwbus.messages import FaultNotification, describe_validation_error, new_id


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SimulatedMonitorState(_Strict):
    status: Status = Status.NORMAL
    restarts: int = Field(default=0, ge=0)
    failovers: int = Field(default=0, ge=0)
    final_action_taken: bool = False
    faults: int = Field(default=0, ge=0)
    last_fault_at: datetime | None = None
    unreported: int = Field(default=0, ge=0)
    reported_at: datetime | None = None
    """When a fault in Error was last reported: a repeat before `repeat_summary_interval` has
    passed is counted for the next summary (MRW-106) instead of reported."""


class SimulatedState(_Strict):
    """`--state`: anything left out is as at the service's start."""

    placement: dict[str, str | None] = Field(default_factory=dict)
    alive: list[str] | dict[str, bool] | None = None
    """The servers alive (a list), or some servers' liveness (`{"server2": false}`; the
    others alive)."""
    suspended: list[str] = Field(default_factory=list)
    monitors: dict[str, dict[str, SimulatedMonitorState]] = Field(default_factory=dict)


@dataclass
class MonitorOutcome:
    monitor: str
    server: str
    before: Status
    decision: Decision

    @property
    def after(self) -> Status:
        assert self.decision.state is not None  # a fault's decision always has one
        return self.decision.state.status


@dataclass
class Simulation:
    fault: FaultNotification
    outcomes: list[MonitorOutcome]
    route: FaultRoute


def parse_fault_argument(data: dict[str, Any], now: datetime) -> FaultNotification:
    """A fault from `--fault`; `id` and `occurred_at` may be left out."""
    filled = {"id": f"simulated-{new_id()}", "occurred_at": now, "message": "", **data}
    try:
        return FaultNotification.model_validate(filled)
    except ValidationError as exc:
        raise ContractError(f"--fault: {describe_validation_error(exc)}") from exc


def build_state(config: ClusterConfig, data: dict[str, Any]) -> ClusterState:
    try:
        given = SimulatedState.model_validate(data)
    except ValidationError as exc:
        raise ContractError(f"--state: {describe_validation_error(exc)}") from exc
    cluster = ClusterState.for_config(config)
    for group, server in given.placement.items():
        if group not in config.groups:
            raise ContractError(f"--state: placement names unknown group {group!r}")
        cluster.view.placement[group] = server
    if isinstance(given.alive, dict):
        for server in given.alive:
            if server not in config.servers:
                raise ContractError(f"--state: alive names unknown server {server!r}")
        cluster.view.alive = {s for s in config.servers if given.alive.get(s, True)}
    elif given.alive is not None:
        cluster.view.alive = set(given.alive)
    cluster.suspended = set(given.suspended)
    for monitor, servers in given.monitors.items():
        for server, state in servers.items():
            if (monitor, server) not in cluster.monitors:
                raise ContractError(
                    f"--state: monitor {monitor!r} does not watch server {server!r}"
                )
            cluster.monitors[(monitor, server)] = replace(
                MonitorServerState(), **state.model_dump()
            )
    cluster.reindex()
    return cluster


def simulate(
    config: ClusterConfig, fault: FaultNotification, cluster: ClusterState, now: datetime
) -> Simulation:
    """What the service would do with `fault`: the very call its monitor actors make
    (`ClusterState.handle_fault`), for every monitor the fault matches, in the same order."""
    route = route_fault(config, MonitorIndex(config), fault, now)  # the service's first step
    outcomes = []
    for monitor in route.monitors:
        before = cluster.state_of(monitor, fault.server)
        decision = cluster.handle_fault(monitor, fault, now)
        outcomes.append(MonitorOutcome(monitor, fault.server, before.status, decision))
    return Simulation(fault, outcomes, route)


def render_simulation(simulation: Simulation) -> str:
    fault = simulation.fault
    lines = [f"fault: {fault.category.value} {fault.device!r} on {fault.server} ({fault.state})"]
    route = simulation.route
    if route.dead_letter is not None:
        lines.append(
            f"dead-lettered: {route.dead_letter}; nothing happens"
            " (`mrwbus dead replay` once it is configured)"
        )
    elif route.unmatched is not None:
        lines.append("matches no monitor: acknowledged, nothing else happens")
        lines.append(f"  event {route.unmatched.code}: {route.unmatched.text}")
    for outcome in simulation.outcomes:
        lines.append(
            f"{outcome.monitor} on {outcome.server}: {outcome.before.value} -> {outcome.after.value}"
        )
        step = outcome.decision.step
        lines.append(f"  ladder step: {step.text if step else '-'}")
        for group, chosen in outcome.decision.destinations.items():
            lines.append(f"  destination of {group}: {chosen}")
        for command in outcome.decision.commands:
            facts = ", ".join(
                f"{key}={value}"
                for key, value in command.model_dump(
                    mode="json",
                    exclude_none=True,
                    exclude={"id", "fault_id", "issued_at", "monitor"},
                ).items()
            )
            lines.append(f"  command -> {command.routing_key}: {facts}")
        for progress in outcome.decision.failovers:
            lines.append(
                f"  then, once {progress.from_server} confirms the stop: "
                f"start of {progress.group} on {progress.to_server}"
            )
        for event in outcome.decision.events:
            lines.append(f"  event {event.code}: {event.text}")
        state = outcome.decision.state
        if state is not None and state.unreported and not outcome.decision.events:
            lines.append(
                f"  no event: counted and journaled; {state.unreported} unreported fault(s) go"
                " into the next summary (MRW-106)"
            )
    return "\n".join(lines)
