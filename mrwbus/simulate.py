"""`mrwbus simulate`: what a fault would do, from a given cluster state, with no broker.

Runs the very functions the service runs (`ClusterState.handle_fault`), so a configuration
change can be checked before it goes live, like an alert router's routing tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mrwbus.config import ClusterConfig
from mrwbus.core.cluster import ClusterState
from mrwbus.core.failover import FailoverInProgress
from mrwbus.core.matching import MonitorIndex
from mrwbus.core.monitor import MonitorServerState, Status, Step, next_step
from mrwbus.errors import ContractError
from mrwbus.messages import (
    Action,
    Event,
    FaultNotification,
    RecoveryCommand,
    describe_validation_error,
    new_id,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SimulatedMonitorState(_Strict):
    status: Status = Status.NORMAL
    restarts: int = Field(default=0, ge=0)
    failovers: int = Field(default=0, ge=0)
    final_action_taken: bool = False
    faults: int = Field(default=0, ge=0)
    last_fault_at: datetime | None = None


class SimulatedState(_Strict):
    """`--state`: anything left out is as at the service's start."""

    placement: dict[str, str | None] = Field(default_factory=dict)
    alive: list[str] | None = None
    suspended: list[str] = Field(default_factory=list)
    monitors: dict[str, dict[str, SimulatedMonitorState]] = Field(default_factory=dict)


@dataclass
class MonitorOutcome:
    monitor: str
    server: str
    before: Status
    after: Status
    ladder: str
    commands: list[RecoveryCommand] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    failovers: list[FailoverInProgress] = field(default_factory=list)


@dataclass
class Simulation:
    fault: FaultNotification
    outcomes: list[MonitorOutcome]


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
    if given.alive is not None:
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
    cluster.__post_init__()  # recount the servers in Error
    return cluster


def describe_ladder(cluster: ClusterState, monitor: str, server: str) -> str:
    """The ladder step a fault while Normal would take: `restart 2 of 3`, `final action`..."""
    recovery = cluster.config.monitors[monitor].recovery
    state = cluster.state_of(monitor, server)
    step = next_step(recovery, state)
    if step is Step.EXHAUSTED:
        return "exhausted: the final action was already taken; counts must be reset"
    if step is Step.FINAL:
        if recovery.action is Action.FINAL_ACTION:
            return f"final action {recovery.final_action.value}"
        used = state.restarts if recovery.action is Action.RESTART else state.failovers
        limit = (
            recovery.max_restarts if recovery.action is Action.RESTART else recovery.max_failovers
        )
        return f"final action {recovery.final_action.value} ({recovery.action.value}s used up: {used} of {limit})"
    if recovery.action is Action.RESTART:
        return f"restart {state.restarts + 1} of {recovery.max_restarts}"
    if recovery.action is Action.FAILOVER:
        return f"failover {state.failovers + 1} of {recovery.max_failovers}"
    return "script"


def simulate(
    config: ClusterConfig, fault: FaultNotification, cluster: ClusterState, now: datetime
) -> Simulation:
    outcomes = []
    for monitor in MonitorIndex(config).match(fault.server, fault.category, fault.device):
        before = cluster.state_of(monitor, fault.server)
        if before.counts_expired(config.monitors[monitor].recovery.reset_counts_after, now):
            cluster.monitors[(monitor, fault.server)] = before.with_counts_reset()
        ladder = describe_ladder(cluster, monitor, fault.server)
        decision = cluster.handle_fault(monitor, fault, now)
        if ladder.startswith("failover") and not decision.failovers:
            ladder += " (not taken: see the events; no count used)"
        outcomes.append(
            MonitorOutcome(
                monitor=monitor,
                server=fault.server,
                before=before.status,
                after=decision.state.status,
                ladder=ladder if before.status is Status.NORMAL and fault.state == "error" else "-",
                commands=list(decision.commands),
                events=list(decision.events),
                failovers=list(decision.failovers),
            )
        )
    return Simulation(fault, outcomes)


def render_simulation(simulation: Simulation) -> str:
    fault = simulation.fault
    lines = [f"fault: {fault.category.value} {fault.device!r} on {fault.server} ({fault.state})"]
    if not simulation.outcomes:
        lines.append("matches no monitor: acknowledged, nothing happens")
    for outcome in simulation.outcomes:
        lines.append(
            f"{outcome.monitor} on {outcome.server}: {outcome.before.value} -> {outcome.after.value}"
        )
        lines.append(f"  ladder step: {outcome.ladder}")
        for command in outcome.commands:
            facts = ", ".join(
                f"{key}={value}"
                for key, value in command.model_dump(
                    mode="json",
                    exclude_none=True,
                    exclude={"id", "fault_id", "issued_at", "monitor"},
                ).items()
            )
            lines.append(f"  command -> {command.routing_key}: {facts}")
        for progress in outcome.failovers:
            lines.append(
                f"  then, once {progress.from_server} confirms the stop: "
                f"start of {progress.group} on {progress.to_server}"
            )
        for event in outcome.events:
            lines.append(f"  event {event.code}: {event.text}")
    return "\n".join(lines)
