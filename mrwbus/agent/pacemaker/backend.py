"""The Pacemaker backend: the agent's commands carried out by Pacemaker, each result given only
once crm_mon shows the outcome (docs/pacemaker.md).

One handler for every command Pacemaker carries out (`operations.operation_for` says which
operation); one probe that reads crm_mon for every group. Engines do not fight:

- a move is mrwbus's own location constraint (`mrwbus-move-<id>`), written only while
  Pacemaker is idle, and removed as soon as crm_mon shows the group running wholly on the
  destination, so Pacemaker's later placement (and a person's `crm_resource --move`) is free;
- a second move of the same resource while one is under way is refused, a move to where the
  group runs already is a confirmation: two agents asked for the same failover move it once;
- a move Pacemaker will not make (a ban, a node in standby, target-role Stopped, a failed
  start) is a failed result with Pacemaker's reason, and its constraint is removed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from mrwbus.agent.handlers import HandlerResult
from mrwbus.agent.pacemaker.cli import PacemakerCli, PacemakerError
from mrwbus.agent.pacemaker.crm_mon import ClusterStatus, FailedAction, refusal_reason
from mrwbus.agent.pacemaker.operations import (
    FenceHow,
    Kind,
    NotPacemakers,
    Operation,
    move_constraint_id,
    operation_for,
)
from mrwbus.config.model import ClusterConfig
from mrwbus.messages import Outcome, PowerState, RecoveryCommand

log = logging.getLogger(__name__)

IDLE_CONFIRMS = 2
"""Polls in a row that find Pacemaker idle and the group not moved before a move counts as refused."""
GRACE = 1.0
"""Seconds after writing a constraint before an idle Pacemaker counts as having decided."""
STATUS_REUSE = 0.5
"""Seconds a probe's crm_mon reading serves the other groups' probes."""


class PacemakerBackend:
    """Carries out `server`'s commands through Pacemaker, and probes its groups from crm_mon."""

    def __init__(
        self,
        config: ClusterConfig,
        server: str,
        cli: PacemakerCli | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.settings = config.agent.pacemaker
        self.server = server
        self.node = self.settings.node_name(server)
        self.cli = cli or PacemakerCli()
        self.clock = clock
        self.settle = self.settings.settle_timeout.total_seconds()
        self.poll = self.settings.poll_interval.total_seconds()
        self._reading: tuple[float, asyncio.Future[ClusterStatus]] | None = None
        self.failures: tuple[FailedAction, ...] = ()
        """Pacemaker's failed actions as last read: its own recoveries, reported, never acted on."""

    # --- the handler --------------------------------------------------------------------

    async def __call__(self, command: RecoveryCommand) -> HandlerResult:
        try:
            operation = operation_for(command, self.settings, self.server)
        except NotPacemakers as exc:
            return HandlerResult(Outcome.REFUSED, str(exc))
        deadline = self.clock() + self.settle
        self._reading = None  # a probe after the command reads crm_mon afresh
        try:
            match operation.kind:
                case Kind.MOVE:
                    return await self.move(operation, deadline)
                case Kind.ARRIVE:
                    return await self.arrive(operation, deadline)
                case Kind.RESTART:
                    return await self.restart(operation)
                case Kind.STOP:
                    return await self.stop(operation, deadline)
                case Kind.STANDBY:
                    return await self.standby(operation, deadline)
                case Kind.FENCE:
                    return await self.fence(operation)
        except PacemakerError as exc:
            return HandlerResult.failed(str(exc))
        finally:
            self._reading = None
        raise AssertionError(operation)  # pragma: no cover

    # --- moves --------------------------------------------------------------------------

    async def move(self, op: Operation, deadline: float) -> HandlerResult:
        """The failover's stop: the group moved to `op.node`, confirmed by crm_mon."""
        assert op.resource is not None and op.node is not None
        began = self.clock()
        status = await self.cli.status()
        unit = status.unit(op.resource)
        if unit is not None and unit.runs_wholly_on(op.node):
            await self.cli.unplace(op.resource)
            return HandlerResult.succeeded(
                f"{op.resource} runs on {op.node} already (crm_mon); no move"
            )
        constraints = await self.cli.constraints()
        ours = next((c for c in constraints if c.id == move_constraint_id(op.resource)), None)
        if ours is not None and ours.node != op.node:
            return HandlerResult.failed(
                f"a move of {op.resource} to {ours.node} is under way ({ours.id}); no second move"
            )
        reason = refusal_reason(status, unit, op.node, constraints, move_constraint_id(op.resource))
        if reason is not None:
            return HandlerResult.failed(
                f"Pacemaker refuses to run {op.resource} on {op.node}: {reason}"
            )
        assert unit is not None
        source = ", ".join(sorted(unit.nodes)) or "nowhere"
        if ours is None:
            if not await self._settled(status.dc, deadline):
                return HandlerResult(
                    Outcome.TIMED_OUT,
                    f"Pacemaker was still acting after {self.settle:g} s; no move",
                )
            await self.cli.place(op.resource, op.node)
        return await self._confirm_on(op.resource, op.node, source, began, deadline)

    async def arrive(self, op: Operation, deadline: float) -> HandlerResult:
        """The failover's start: the group runs here. Pacemaker usually put it here already
        (the stop's move, or its own recovery after a standby or a fence)."""
        assert op.resource is not None and op.node is not None
        status = await self.cli.status()
        await self._settled(status.dc, deadline)
        status = await self.cli.status()
        unit = status.unit(op.resource)
        if unit is not None and unit.runs_wholly_on(op.node):
            return HandlerResult.succeeded(f"{op.resource} runs on {op.node} (crm_mon)")
        if unit is not None and unit.nodes and op.node not in unit.nodes:
            where = ", ".join(sorted(unit.nodes))
            return HandlerResult.failed(
                f"Pacemaker runs {op.resource} on {where}, not on {op.node}; no second move"
            )
        return await self.move(op, deadline)

    async def _confirm_on(
        self, resource: str, node: str, source: str, began: float, deadline: float
    ) -> HandlerResult:
        placed = self.clock()
        idle_polls = 0
        while True:
            status = await self.cli.status()
            unit = status.unit(resource)
            if unit is not None and unit.runs_wholly_on(node):
                await self.cli.unplace(resource)
                return HandlerResult.succeeded(
                    f"{resource} runs on {node} (crm_mon), moved by Pacemaker from {source}"
                    f" in {self.clock() - began:.1f} s; constraint {move_constraint_id(resource)} cleared"
                )
            if self.clock() - placed >= GRACE and await self.cli.idle(status.dc):
                idle_polls += 1
            else:
                idle_polls = 0
            if idle_polls >= IDLE_CONFIRMS or self.clock() >= deadline:
                await self.cli.unplace(resource)
                constraints = await self.cli.constraints()
                reason = (
                    refusal_reason(status, unit, node, constraints, move_constraint_id(resource))
                    or f"it runs on {', '.join(sorted(unit.nodes)) if unit and unit.nodes else 'no node'}"
                )
                if idle_polls >= IDLE_CONFIRMS:
                    return HandlerResult.failed(
                        f"Pacemaker did not move {resource} to {node}: {reason}"
                    )
                return HandlerResult(
                    Outcome.TIMED_OUT,
                    f"{resource} not running on {node} after {self.settle:g} s: {reason}",
                )
            await asyncio.sleep(self.poll)

    async def _settled(self, dc: str | None, deadline: float) -> bool:
        """Wait until Pacemaker is not acting (no transition on the DC); False at the deadline."""
        while not await self.cli.idle(dc):
            if self.clock() >= deadline:
                return False
            await asyncio.sleep(self.poll)
            dc = (await self.cli.status()).dc
        return True

    # --- the rest -----------------------------------------------------------------------

    async def restart(self, op: Operation) -> HandlerResult:
        assert op.resource is not None
        await self.cli.restart(op.resource, self.settle)
        unit = (await self.cli.status()).unit(op.resource)
        if unit is None or not unit.nodes:
            return HandlerResult.failed(f"{op.resource} was restarted and runs nowhere (crm_mon)")
        where = ", ".join(sorted(unit.nodes))
        return HandlerResult.succeeded(
            f"{op.resource} restarted by Pacemaker; runs on {where} (crm_mon)"
        )

    async def stop(self, op: Operation, deadline: float) -> HandlerResult:
        if op.resource is not None:
            resources = [op.resource]
        else:  # all groups: those that run here
            status = await self.cli.status()
            resources = [
                self.settings.resource_id(group)
                for group in self.config.groups
                if (unit := status.unit(self.settings.resource_id(group)))
                and self.node in unit.nodes
            ]
        for resource in resources:
            await self.cli.target_role(resource, "Stopped")
        while True:
            status = await self.cli.status()
            running = [r for r in resources if (u := status.unit(r)) is not None and u.nodes]
            if not running:
                stopped = ", ".join(resources) or "no group ran here"
                return HandlerResult.succeeded(f"target-role Stopped: {stopped} (crm_mon)")
            if self.clock() >= deadline:
                return HandlerResult(Outcome.TIMED_OUT, f"still running: {', '.join(running)}")
            await asyncio.sleep(self.poll)

    async def standby(self, op: Operation, deadline: float) -> HandlerResult:
        assert op.node is not None
        await self.cli.standby(op.node)
        while True:
            status = await self.cli.status()
            node = status.nodes.get(op.node)
            left = sorted(u.id for u in status.units.values() if op.node in u.nodes)
            if node is not None and node.standby and not left:
                return HandlerResult.succeeded(
                    f"node {op.node} in standby; nothing runs there (crm_mon)"
                )
            if self.clock() >= deadline:
                return HandlerResult(
                    Outcome.TIMED_OUT,
                    f"node {op.node} in standby, still running: {', '.join(left)}",
                )
            await asyncio.sleep(self.poll)

    async def fence(self, op: Operation) -> HandlerResult:
        assert op.node is not None and op.fence is not None
        history = await self.cli.fence(op.node, op.fence, self.settle)
        power = PowerState.OFF if op.fence is FenceHow.OFF else PowerState.ON
        return HandlerResult(
            Outcome.SUCCEEDED, f"fenced by Pacemaker (stonith_admin): {history}", power
        )

    # --- the probe ----------------------------------------------------------------------

    async def probe(self, group: str) -> bool | None:
        """Whether `group` runs on this node, per crm_mon (None: Pacemaker cannot tell now)."""
        try:
            status = await self._status()
        except PacemakerError as exc:
            log.warning("crm_mon on %s: %s", self.node, exc)
            return None
        unit = status.unit(self.settings.resource_id(group))
        if unit is None:
            return None
        return self.node in unit.nodes

    async def _status(self) -> ClusterStatus:
        """One crm_mon reading shared by the probes of one round."""
        now = self.clock()
        if self._reading is None or now - self._reading[0] > STATUS_REUSE:
            self._reading = (now, asyncio.ensure_future(self.cli.status()))
        try:
            status = await asyncio.shield(self._reading[1])
        except PacemakerError:
            self._reading = None
            raise
        self._note_failures(status)
        return status

    def notes(self) -> list[str]:
        """Pacemaker's failed actions on this node, for the agent's reports (not faults)."""
        return [f.describe()[:300] for f in self.failures if f.node == self.node]

    def _note_failures(self, status: ClusterStatus) -> None:
        if status.failures != self.failures:
            for failure in set(status.failures) - set(self.failures):
                log.warning("Pacemaker recovers by itself: %s", failure.describe())
            self.failures = status.failures
