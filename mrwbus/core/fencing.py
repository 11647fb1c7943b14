"""Fencing: a server that cannot prove itself stopped is powered off through its BMC by a peer.

Pacemaker's rule, and the seed product's: a group leaves a server only once its stop was
confirmed, a final action that downs the server succeeded, or the server was fenced. A fence is
an incident (`FenceIncident`) with an id derived from its cause; the service asks one peer's
agent at a time (alive, not silent, not in Error, allowed by `bmc.fenced_by`; the server that
will take the groups over first, then the configuration's order) to run the server's fence
agent, and believes only a result whose power state the BMC reported back. A peer that fails
or does not answer in time gives way to the next; when every peer failed, the incident waits
and tries again, the wait doubling up to `RETRY_CAP`. Once verified, the server is down (no
destination, no fencer) until its agent reports again, and its groups fail over as after a
final action (`core.downed`). Pure: state and an input in, a `Decision` out.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from mrwbus.config.model import ClusterConfig
from mrwbus.core import events
from mrwbus.core.decision import Decision, recovery_command
from mrwbus.core.downed import ServerDown, follow_downed_server
from mrwbus.core.failover import FailoverRules
from mrwbus.core.placement import ClusterView, choose_failover_destination
from mrwbus.core.progress import Down, FailoverInProgress, FenceIncident, Phase
from mrwbus.messages import (
    NO_MONITOR,
    Action,
    CommandResult,
    Event,
    FenceAction,
    Outcome,
    RecoveryCommand,
    derived_id,
)

RETRY_CAP = timedelta(minutes=5)
"""The longest wait between two rounds of fencers."""

DONE = {
    FenceAction.OFF: "fenced (power off)",
    FenceAction.REBOOT: "fenced (reboot)",
    FenceAction.DIAG: "fenced (NMI)",
    FenceAction.ON: "powered on",
    FenceAction.STATUS: "power status read",
}
"""What a verified fence action did, in words (MRW-1002)."""

ANSWER_GRACE = timedelta(seconds=10)
"""Beyond the BMC's own `timeout`: the command's trip to the agent and its result's back."""


class Fencing:
    """The facts a fence needs: the configuration, the view, and which servers are in Error."""

    def __init__(
        self,
        config: ClusterConfig,
        view: ClusterView,
        servers_in_error: Collection[str],
        failovers: Mapping[str, FailoverInProgress],
    ) -> None:
        self.config = config
        self.view = view
        self.servers_in_error = servers_in_error
        self.failovers = failovers

    # --- starting -------------------------------------------------------------------------

    def start(
        self, incident: FenceIncident, now: datetime, existing: FenceIncident | None
    ) -> Decision:
        """Fence `incident.target`, unless a fence of it is under way already (one per
        server at a time: the later cause joins it, asking for the groups to follow if it does)."""
        if existing is not None:  # the decision names it, so a failover can wait for it
            if incident.recover_groups and not existing.recover_groups:
                existing = replace(existing, recover_groups=True)
            return Decision(fences=(existing,))
        started = _event(events.FENCE_STARTED, incident, now, incident.id, reason=incident.reason)
        return self._ask_next(incident, now, (started,))

    def fencer_for(self, target: str, tried: Collection[str] = ()) -> str | None:
        """The peer to ask: alive, not down, not in Error, allowed; the server that will take
        the target's first group over first, then the configuration's order."""
        eligible = [
            server
            for server in self.config.servers
            if self.config.may_fence(server, target)
            and server in self.view.alive
            and server not in self.view.down
            and server not in self.servers_in_error
            and server not in tried
        ]
        for group in self.view.groups_on(target):
            taker = choose_failover_destination(
                self.config,
                group,
                target,
                servers_in_error=self.servers_in_error,
                alive=set(self.view.alive) - set(self.view.down),
            ).server
            if taker in eligible:
                return taker
        return eligible[0] if eligible else None

    def _ask_next(
        self, incident: FenceIncident, now: datetime, found: tuple[Event, ...] = ()
    ) -> Decision:
        fencer = self.fencer_for(incident.target, incident.tried)
        if fencer is None:
            return self._round_failed(incident, now, found)
        bmc = self.config.bmc_of(incident.target)
        assert bmc is not None
        command = fence_command(incident, fencer, now)
        asked = replace(
            incident,
            fencer=fencer,
            awaiting=command.id,
            deadline=now + bmc.timeout + ANSWER_GRACE,
            tried=(*incident.tried, fencer),
        )
        issued = events.command_issued(
            command,
            at=now,
            cause=command.id,
            server=incident.target,
            description=f"fence ({incident.action.value}) of {incident.target} through its BMC",
        )
        return Decision(commands=(command,), events=(*found, issued), fences=(asked,))

    def _round_failed(
        self, incident: FenceIncident, now: datetime, found: tuple[Event, ...]
    ) -> Decision:
        """No peer left to ask in this round: say so, let waiting failovers go, try later."""
        retry = min(self.config.service.fence_retry_after * (2**incident.rounds), RETRY_CAP)
        why = (
            f"every peer failed ({', '.join(incident.tried)})"
            if incident.tried
            else "no peer can fence it now (none alive, healthy and allowed by bmc.fenced_by)"
        )
        failed = _event(
            events.FENCE_FAILED,
            incident,
            now,
            f"{incident.id}/{incident.rounds}",
            why=why,
            retry=f"{retry.total_seconds():g} s",
        )
        # A failover that waited for this fence gives up; the group stays where it is, and
        # follows the server once a later round fences it (`recover_groups`).
        given_up = self._waiting_failovers(incident)
        waiting = replace(
            incident,
            fencer=None,
            awaiting=None,
            tried=(),
            rounds=incident.rounds + 1,
            deadline=now + retry,
            recover_groups=incident.recover_groups or bool(given_up),
        )
        decision = Decision(events=(*found, failed), fences=(waiting,))
        for progress in given_up:
            gave_up = events.FENCING_FAILED.make(
                at=now,
                cause=f"{progress.fault_id}/{incident.id}/{incident.rounds}",
                monitor=progress.monitor,
                server=progress.from_server,
                fault_id=progress.fault_id,
                group=progress.group,
                why=why,
            )
            decision += Decision(events=(gave_up,), ended=(progress.group,))
        return decision

    # --- moving on ------------------------------------------------------------------------

    def on_result(self, incident: FenceIncident, result: CommandResult, now: datetime) -> Decision:
        if result.command_id != incident.awaiting:
            return Decision()  # a late or repeated answer to an earlier try
        expected = incident.action.expected_power
        verified = result.outcome is Outcome.SUCCEEDED and (
            expected is None or result.power == expected
        )
        if verified:
            return self._fenced(incident, result, now)
        why = result.outcome.value + (f": {result.detail}" if result.detail else "")
        if result.outcome is Outcome.SUCCEEDED:
            why = f"the BMC reports the power {result.power or 'unknown'}, not {expected}"
        return self._attempt_failed(incident, now, why[:300])

    def on_deadline(self, incident: FenceIncident, now: datetime) -> Decision:
        if now < incident.deadline:
            return Decision()
        if incident.awaiting is not None:
            return self._attempt_failed(incident, now, "no answer in time")
        return self._ask_next(incident, now)  # the next round

    def _attempt_failed(self, incident: FenceIncident, now: datetime, why: str) -> Decision:
        failed = _event(
            events.FENCE_ATTEMPT_FAILED,
            incident,
            now,
            incident.awaiting or incident.id,
            fencer=incident.fencer or "no peer",
            why=why,
        )
        return self._ask_next(replace(incident, fencer=None, awaiting=None), now, (failed,))

    def _fenced(self, incident: FenceIncident, result: CommandResult, now: datetime) -> Decision:
        fencer = incident.fencer or result.server
        fenced = _event(
            events.FENCED,
            incident,
            now,
            incident.id,
            done=DONE[incident.action],
            fencer=fencer,
            power=result.power.value if result.power else "as it was",
        )
        decision = Decision(events=(fenced,), fences_ended=(incident.target,))
        if not incident.action.proves_stopped:
            return decision
        how = f"fenced ({incident.action.value}) by {fencer}"
        decision += Decision(downs={incident.target: Down(how=how, at=now, by=fencer)})
        if not incident.recover_groups:
            return decision
        # The groups follow as the view will be once the fence is applied.
        view = replace(
            self.view,
            alive=set(self.view.alive) - {incident.target},
            down={**self.view.down, incident.target: Down(how=how, at=now, by=fencer)},
        )
        rules = FailoverRules(
            self.config, view, self.servers_in_error, self.config.service.exclude_destinations
        )
        for progress in self._stopped_by(incident):
            decision += rules.start(progress, now)
        down = ServerDown(
            server=incident.target,
            how=how,
            cause=incident.id,
            monitor=incident.monitor,
            fault_id=incident.fault_id or incident.id,
            fault=incident.fault,
        )
        return decision + follow_downed_server(self.config, view, down, self.servers_in_error, now)

    def _stopped_by(self, incident: FenceIncident) -> list[FailoverInProgress]:
        """The failovers the fence lets start: those waiting for it, and those still waiting
        for their stop on the fenced server (nothing runs there any more)."""
        return [
            progress
            for progress in self.failovers.values()
            if (progress.phase is Phase.FENCING and progress.awaiting == incident.id)
            or (progress.phase is Phase.STOPPING and progress.from_server == incident.target)
        ]

    def _waiting_failovers(self, incident: FenceIncident) -> list[FailoverInProgress]:
        return [
            progress
            for progress in self.failovers.values()
            if progress.phase is Phase.FENCING and progress.awaiting == incident.id
        ]


def _event(
    kind: events.EventType, incident: FenceIncident, now: datetime, cause: str, **facts: str
) -> Event:
    """An event about `incident`: its server, monitor, fault and action, and `facts`."""
    return kind.make(
        at=now,
        cause=cause,
        monitor=incident.monitor,
        server=incident.target,
        fault_id=incident.fault_id,
        action=incident.action.value,
        **facts,
    )


def fence_command(incident: FenceIncident, fencer: str, now: datetime) -> RecoveryCommand:
    """The command that asks `fencer`'s agent to run the target's fence agent."""
    return recovery_command(
        fault_id=incident.fault_id or incident.id,
        monitor=incident.monitor,
        server=fencer,
        action=Action.FENCE,
        target=incident.target,
        fence_action=incident.action,
        final_action=incident.final_action,
        attempt=f"{incident.id}/{incident.rounds}",
        issued_at=now,
        fault=incident.fault,
    )


def silent_server_fence(
    config: ClusterConfig, view: ClusterView, server: str, now: datetime
) -> FenceIncident | Event | None:
    """What a server that fell silent holding groups calls for: a fence incident, an event
    saying nobody can prove it stopped, or nothing (no group ran there)."""
    groups = [group for group in view.groups_on(server) if group not in view.moving]
    if not groups or server in view.down:
        return None
    seen = view.last_seen[server].isoformat()
    bmc = config.bmc_of(server)
    if bmc is None or not config.service.fence_silent_servers:
        why = "it has no BMC" if bmc is None else "service.fence_silent_servers is false"
        return events.SERVER_UNPROVEN.make(
            at=now, cause=f"unproven/{seen}", server=server, groups=", ".join(groups), why=why
        )
    return FenceIncident(
        id=derived_id("fence", "silent", server, seen),
        target=server,
        action=FenceAction.OFF,
        cause="silent",
        reason=f"silent since {seen} while {', '.join(groups)} ran there",
        recover_groups=True,
        deadline=now,
        monitor=NO_MONITOR,
    )
