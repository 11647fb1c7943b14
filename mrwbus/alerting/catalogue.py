"""Which events fire an alert and which resolve it: pure, events in, alert changes out.

An alert's identity in Alertmanager is its label set, so a resolve must carry exactly the
labels of the alert it ends. Each alert therefore has a scope that fixes its labels:

- `monitor`: alertname, severity, monitor, server (fired by a monitor's event on a server,
  resolved by `mrwbus clear` of that monitor there: MRW-401, or a counts reset: MRW-402);
- `group`: alertname, severity, group (resolved when a failover of the group is done,
  MRW-320, or an operator placed it, MRW-406); where it happened is in the annotations;
- `server`: alertname, severity, server (an agent fell silent; resolved when it reports).

No state is kept: a resolve for an alert that never fired is harmless (Alertmanager sends no
notification for an alert it never notified as firing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from mrwbus.messages import Event

Scope = Literal["monitor", "group", "server"]
Severity = Literal["critical", "warning"]


@dataclass(frozen=True)
class AlertKind:
    """One alert mrwbus pushes, as docs/alerting.md explains it (anchor: the name, lowercased)."""

    name: str
    severity: Severity
    scope: Scope
    meaning: str


MONITOR_ERROR = AlertKind("MrwbusMonitorError", "warning", "monitor", "a monitor turned Error")
FINAL_ACTION_TAKEN = AlertKind(
    "MrwbusFinalActionTaken", "critical", "monitor", "a final action was sent to a server"
)
FINAL_ACTION_FAILED = AlertKind(
    "MrwbusFinalActionFailed", "critical", "monitor", "a final action failed or timed out"
)
COMMAND_FAILED = AlertKind(
    "MrwbusCommandFailed", "warning", "monitor", "a recovery command failed or timed out"
)
RECOVERY_NOT_TAKEN = AlertKind(
    "MrwbusRecoveryNotTaken", "warning", "monitor", "a monitor's recovery did not run"
)
GROUP_RUNS_NOWHERE = AlertKind(
    "MrwbusGroupRunsNowhere", "critical", "group", "a group could be started nowhere"
)
GROUP_STATE_UNKNOWN = AlertKind(
    "MrwbusGroupStateUnknown", "critical", "group", "a stop or start was not confirmed"
)
FENCING_FAILED = AlertKind(
    "MrwbusFencingFailed", "critical", "group", "fencing a server failed; the group waits"
)
GROUP_ON_TWO_SERVERS = AlertKind(
    "MrwbusGroupOnTwoServers", "critical", "group", "two servers report the same group active"
)
AGENT_SILENT = AlertKind("MrwbusAgentSilent", "warning", "server", "a server's agent is silent")

KINDS: tuple[AlertKind, ...] = (
    MONITOR_ERROR,
    FINAL_ACTION_TAKEN,
    FINAL_ACTION_FAILED,
    COMMAND_FAILED,
    RECOVERY_NOT_TAKEN,
    GROUP_RUNS_NOWHERE,
    GROUP_STATE_UNKNOWN,
    FENCING_FAILED,
    GROUP_ON_TWO_SERVERS,
    AGENT_SILENT,
)

FIRES: Mapping[str, AlertKind] = {
    "MRW-102": MONITOR_ERROR,
    "MRW-301": RECOVERY_NOT_TAKEN,
    "MRW-302": RECOVERY_NOT_TAKEN,
    "MRW-303": RECOVERY_NOT_TAKEN,
    "MRW-304": RECOVERY_NOT_TAKEN,
    "MRW-305": RECOVERY_NOT_TAKEN,
    "MRW-310": GROUP_STATE_UNKNOWN,
    "MRW-315": GROUP_STATE_UNKNOWN,
    "MRW-312": FENCING_FAILED,
    "MRW-314": GROUP_RUNS_NOWHERE,
    "MRW-322": GROUP_RUNS_NOWHERE,
    "MRW-603": GROUP_ON_TWO_SERVERS,
    "MRW-601": AGENT_SILENT,
}
"""Events that fire an alert whatever their details; MRW-201 and MRW-702 depend on them."""

RESOLVES: Mapping[str, tuple[AlertKind, ...]] = {
    # An operator's clear or counts reset says "dealt with": every alert of that monitor there.
    "MRW-401": tuple(kind for kind in KINDS if kind.scope == "monitor"),
    "MRW-402": tuple(kind for kind in KINDS if kind.scope == "monitor"),
    # Back to Normal by itself: the error is over; a final action taken still waits for a clear.
    "MRW-502": (MONITOR_ERROR, RECOVERY_NOT_TAKEN, COMMAND_FAILED),
    "MRW-503": (MONITOR_ERROR, RECOVERY_NOT_TAKEN, COMMAND_FAILED),
    "MRW-320": tuple(kind for kind in KINDS if kind.scope == "group"),
    "MRW-406": tuple(kind for kind in KINDS if kind.scope == "group"),
    "MRW-602": (AGENT_SILENT,),
}

ROUTING_KEYS = ("status.*", "command.*", "not_taken.*", "control.*", "counts.*", "result.*")
"""Event kinds that fire or resolve an alert: the forwarder's queue binds only these
(`server` events go with `server.*`), so the flood of `fault` events never reaches it."""
BINDINGS = (*ROUTING_KEYS, "server.*")

_FINAL_ACTION = "final_action"
_FINAL_DESCRIPTION = "final action "
"""How MRW-702's `action` fact names a final action (`core.cluster._describe`)."""


@dataclass(frozen=True)
class AlertChange:
    """One alert as Alertmanager's v2 API takes it: firing (`ends_at` in the future) or
    resolved (`ends_at` when the condition ended)."""

    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    generator_url: str | None = None
    resolved: bool = field(default=False)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "labels": self.labels,
            "annotations": self.annotations,
            "startsAt": self.starts_at.isoformat(),
            "endsAt": self.ends_at.isoformat(),
        }
        if self.generator_url:
            body["generatorURL"] = self.generator_url
        return body


@dataclass(frozen=True)
class Presentation:
    """What every pushed alert carries besides its own facts (from `alerting:`)."""

    labels: Mapping[str, str] = field(default_factory=dict)
    hold: timedelta = timedelta(days=4)
    runbook_base: str = "docs/alerting.md"
    generator_url: str | None = None


def fired_kind(event: Event) -> AlertKind | None:
    """The alert an event fires, if any."""
    if event.code == "MRW-201":
        return FINAL_ACTION_TAKEN if event.detail.get("action") == _FINAL_ACTION else None
    if event.code == "MRW-702":
        action = str(event.detail.get("action", ""))
        return FINAL_ACTION_FAILED if action.startswith(_FINAL_DESCRIPTION) else COMMAND_FAILED
    return FIRES.get(event.code)


def identity(kind: AlertKind, event: Event, extra: Mapping[str, str]) -> dict[str, str] | None:
    """The labels that name this alert; None when the event lacks what its scope needs."""
    scoped: dict[str, str | None]
    if kind.scope == "monitor":
        scoped = {"monitor": event.monitor if event.monitor != "_" else None}
        scoped["server"] = event.server
    elif kind.scope == "group":
        scoped = {"group": event.group}
    else:
        scoped = {"server": event.server}
    if any(value is None for value in scoped.values()):
        return None
    labels = {**extra, "alertname": kind.name, "severity": kind.severity}
    labels.update({name: value for name, value in scoped.items() if value is not None})
    return labels


def alert_changes(events: Iterable[Event], presentation: Presentation) -> list[AlertChange]:
    """The alerts these events fire and resolve, in the events' order."""
    changes: list[AlertChange] = []
    for event in events:
        kind = fired_kind(event)
        if kind is not None and (labels := identity(kind, event, presentation.labels)):
            changes.append(
                AlertChange(
                    labels=labels,
                    annotations=_annotations(kind, event, presentation),
                    starts_at=event.at,
                    ends_at=event.at + presentation.hold,
                    generator_url=presentation.generator_url,
                )
            )
        for ended in RESOLVES.get(event.code, ()):
            if labels := identity(ended, event, presentation.labels):
                changes.append(
                    AlertChange(
                        labels=labels,
                        annotations={
                            "summary": f"resolved: {event.text}",
                            "resolved_by": event.code,
                            "runbook_url": runbook_url(ended, presentation.runbook_base),
                        },
                        # Alertmanager keeps the earliest start of an alert it knows.
                        starts_at=event.at,
                        ends_at=event.at,
                        generator_url=presentation.generator_url,
                        resolved=True,
                    )
                )
    return changes


def runbook_url(kind: AlertKind, base: str) -> str:
    return f"{base}#{kind.name.lower()}"


def _annotations(kind: AlertKind, event: Event, presentation: Presentation) -> dict[str, str]:
    found = {
        "summary": event.text,
        "description": f"{kind.meaning} ({event.code}).",
        "code": event.code,
        "event_id": event.id,
        "runbook_url": runbook_url(kind, presentation.runbook_base),
    }
    # Where it happened, for a group alert whose labels name only the group.
    for name in ("monitor", "server", "group"):
        value = getattr(event, name)
        if value and value != "_":
            found[name] = str(value)
    facts = ("final_action", "target_server", "to_server", "reason", "why", "outcome")
    for name in facts:
        if name in event.detail:
            found[name] = str(event.detail[name])
    if event.code == "MRW-201":  # "final action shutdown": what was sent, for people
        found["command"] = str(event.detail.get("description", ""))
    return found
