"""The reference agent's handlers and probes for groups whose resources are OCF agents.

For such a group the agent registers, as the group's own handlers:

- `failover.start`: each resource's `start` in the group's order; when one fails, the ones
  already started are stopped again (reverse order), so a failed start leaves nothing half up
  unless a stop fails too, which the detail says;
- `failover.stop` and `final_action.stop_group`: each `stop` in reverse order, ending at the
  first that fails: the resources before it stay up (a filesystem is not unmounted under a
  database that would not stop), and the result is failed, so a failover waits or fences and
  never starts the group twice;
- `restart`: the group's stop, then its start; with `target: <resource>` (the command names
  a resource) that resource's stop then start only;
- a probe: every resource's `monitor`; the group runs here when any resource is there (running
  or failed), not when all say not running, and cannot tell otherwise.

A handler written in `agent.groups.<group>` wins over the OCF one of the same name. Every
action's exit code and the agent's own words (`ocf-exit-reason`, else its last line) go into
the result's detail, one line per action.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

from mrwbus.agent.handlers import HandlerResult
from mrwbus.agent.ocf_resources import OcfResource, OcfRun, resources_on
from mrwbus.agent.probes import Probe
from mrwbus.agent.resource_agents import ocf_root
from mrwbus.config.model import ClusterConfig
from mrwbus.config.resources import OCF_HANDLERS
from mrwbus.messages import Outcome, RecoveryCommand
from mrwbus.ocf.contract import OcfAction, ResourceState, group_present

log = logging.getLogger(__name__)


class _Steps:
    """The actions done so far, and the result they make."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, run: OcfRun) -> OcfRun:
        self.lines.append(run.describe())
        return run

    def note(self, line: str) -> None:
        self.lines.append(line)

    def result(self, outcome: Outcome) -> HandlerResult:
        return HandlerResult(outcome, "\n".join(self.lines))


async def stop_all(resources: Sequence[OcfResource], steps: _Steps) -> Outcome:
    """Stop in reverse order; the first failure ends it, the rest left running."""
    ordered = list(reversed(resources))
    for index, resource in enumerate(ordered):
        run = steps.add(await resource.run(OcfAction.STOP))
        if run.outcome is not Outcome.SUCCEEDED:
            left = [r.name for r in ordered[index + 1 :]]
            if left:
                steps.note(f"not stopped, since {resource.name} did not stop: {', '.join(left)}")
            return run.outcome
    return Outcome.SUCCEEDED


async def start_all(resources: Sequence[OcfResource], steps: _Steps) -> Outcome:
    """Start in order; on a failure, stop again what was started."""
    for index, resource in enumerate(resources):
        run = steps.add(await resource.run(OcfAction.START))
        if run.outcome is not Outcome.SUCCEEDED:
            # The failed one may be half up too: it is stopped with the others.
            started = resources[: index + 1]
            steps.note(f"stopping again what this start began: {_names(reversed(started))}")
            if await stop_all(started, steps) is not Outcome.SUCCEEDED:
                steps.note("some resources of the group may still run here")
            return run.outcome
    return Outcome.SUCCEEDED


def _names(resources: Iterable[OcfResource]) -> str:
    return ", ".join(r.name for r in resources)


class OcfGroupHandler:
    """One handler (`OCF_HANDLERS`) of one group, carried out by its resources' agents."""

    def __init__(self, name: str, group: str, resources: Sequence[OcfResource]) -> None:
        if name not in OCF_HANDLERS:
            raise ValueError(f"OCF resources carry out {', '.join(OCF_HANDLERS)}, not {name}")
        self.name = name
        self.group = group
        self.resources = list(resources)

    async def __call__(self, command: RecoveryCommand) -> HandlerResult:
        return await self.run(command.resource)

    async def run(self, resource: str | None = None) -> HandlerResult:
        """Carry the handler out: for one resource of the group only, when named."""
        steps = _Steps()
        chosen = self.resources
        if resource is not None:
            chosen = [r for r in self.resources if r.name == resource]
            if not chosen:
                return HandlerResult(
                    Outcome.REFUSED, f"resource {resource!r} is not in group {self.group}"
                )
        if self.name == "failover.start":
            return steps.result(await start_all(chosen, steps))
        if self.name in ("failover.stop", "final_action.stop_group"):
            return steps.result(await stop_all(chosen, steps))
        outcome = await stop_all(chosen, steps)
        if outcome is not Outcome.SUCCEEDED:
            steps.note("not started again, since the stop failed")
            return steps.result(outcome)
        return steps.result(await start_all(chosen, steps))

    def __repr__(self) -> str:
        return f"OcfGroupHandler({self.name!r}, {self.group!r}, {_names(self.resources)!r})"


class OcfGroupProbe:
    """Whether a group runs here, from each resource's `monitor`; the last answers kept."""

    def __init__(self, group: str, resources: Sequence[OcfResource]) -> None:
        self.group = group
        self.resources = list(resources)
        self.last: list[OcfRun] = []

    async def __call__(self, group: str) -> bool | None:
        runs = await asyncio.gather(*(r.run(OcfAction.MONITOR) for r in self.resources))
        self.last = list(runs)
        present = group_present(run.state for run in runs)
        if present:
            for run in runs:
                if run.state is not ResourceState.RUNNING:
                    log.warning(
                        "%s of group %s is %s while the group runs here: %s",
                        run.resource,
                        self.group,
                        run.state.value,
                        run.describe(),
                    )
        return present

    def describe(self) -> list[str]:
        """One line per resource: its state and the monitor's exit code."""
        agents = {r.name: str(r.agent) for r in self.resources}
        return [
            f"{run.resource} ({agents[run.resource]}): {run.state.value}, monitor {run.summary()}"
            for run in self.last
        ]

    def __repr__(self) -> str:
        return f"OcfGroupProbe({self.group!r}, {_names(self.resources)!r})"


def resource_lines(probe: Probe | None) -> list[str]:
    """`mrwbus agent --once`: each OCF resource's last monitor state (none for other probes)."""
    return probe.describe() if isinstance(probe, OcfGroupProbe) else []


def ocf_handlers(
    config: ClusterConfig, server: str, *, source: str = "configuration"
) -> tuple[dict[str, dict[str, OcfGroupHandler]], dict[str, OcfGroupProbe]]:
    """group -> handler name -> handler, and group -> probe, for the OCF groups `server` may
    run; names the configuration gives the group a handler of its own for are left out.

    Raises `ConfigError` when an agent is missing or a parameter does not fit its meta-data.
    """
    handlers: dict[str, dict[str, OcfGroupHandler]] = {}
    probes: dict[str, OcfGroupProbe] = {}
    for group, resources in resources_on(config, server, ocf_root(), source=source).items():
        own = config.agent.groups.get(group, {})
        handlers[group] = {
            name: OcfGroupHandler(name, group, resources)
            for name in OCF_HANDLERS
            if name not in own
        }
        if "probe" not in own:
            probes[group] = OcfGroupProbe(group, resources)
    return handlers, probes
