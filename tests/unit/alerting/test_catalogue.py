"""Which events fire and resolve which alert, with which labels (pure)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mrwbus.alerting.catalogue import (
    KINDS,
    Presentation,
    alert_changes,
    fired_kind,
)
from mrwbus.core import events

AT = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
SHOWN = Presentation(labels={"cluster": "prod"}, hold=timedelta(days=1))


def final_action_sent() -> events.Event:
    return events.COMMAND_ISSUED.make(
        at=AT,
        cause="f1",
        monitor="am",
        server="server1",
        description="final action shutdown",
        action="final_action",
        target_server="server1",
    )


def test_a_final_action_fires_a_critical_alert_named_by_monitor_and_server() -> None:
    (change,) = alert_changes([final_action_sent()], SHOWN)
    assert change.labels == {
        "alertname": "MrwbusFinalActionTaken",
        "severity": "critical",
        "monitor": "am",
        "server": "server1",
        "cluster": "prod",
    }
    assert (change.starts_at, change.ends_at, change.resolved) == (
        AT,
        AT + timedelta(days=1),
        False,
    )
    assert change.annotations["runbook_url"] == "docs/alerting.md#mrwbusfinalactiontaken"
    assert change.as_json()["startsAt"] == AT.isoformat()


def test_other_commands_fire_nothing() -> None:
    failover = events.COMMAND_ISSUED.make(
        at=AT,
        cause="f1",
        monitor="nic",
        server="server1",
        description="failover",
        action="failover",
        target_server="server1",
    )
    assert alert_changes([failover], SHOWN) == []


def test_clear_resolves_every_monitor_alert_there_with_the_same_labels() -> None:
    fired = {tuple(sorted(c.labels.items())) for c in alert_changes([final_action_sent()], SHOWN)}
    cleared = events.STATUS_CLEARED.make(at=AT, cause="c", monitor="am", server="server1", by="op")
    resolves = alert_changes([cleared], SHOWN)
    assert all(change.resolved and change.ends_at == AT for change in resolves)
    assert fired <= {tuple(sorted(c.labels.items())) for c in resolves}
    assert {c.labels["alertname"] for c in resolves} == {
        kind.name for kind in KINDS if kind.scope == "monitor"
    }


def test_a_failed_final_action_is_its_own_alert() -> None:
    failed = events.COMMAND_FAILED.make(
        at=AT,
        cause="r",
        monitor="am",
        server="server1",
        action="final action shutdown",
        outcome="failed",
        detail_text="",
    )
    other = events.COMMAND_FAILED.make(
        at=AT,
        cause="r",
        monitor="nic",
        server="server1",
        action="restart of web",
        outcome="timed out",
        detail_text="",
    )
    assert fired_kind(failed) is not None and fired_kind(failed).name == "MrwbusFinalActionFailed"  # type: ignore[union-attr]
    assert fired_kind(other) is not None and fired_kind(other).name == "MrwbusCommandFailed"  # type: ignore[union-attr]


def test_a_group_alert_is_named_by_its_group_and_resolved_when_it_runs_again() -> None:
    stranded = events.GROUP_STRANDED.make(
        at=AT,
        cause="x",
        monitor="am",
        server="server1",
        group="pg",
        final_action="shutdown",
        reason="no server left",
    )
    (fired,) = alert_changes([stranded], SHOWN)
    assert fired.labels == {
        "alertname": "MrwbusGroupRunsNowhere",
        "severity": "critical",
        "group": "pg",
        "cluster": "prod",
    }
    assert fired.annotations["server"] == "server1"
    done = events.FAILOVER_DONE.make(
        at=AT, cause="y", monitor="am", server="server1", group="pg", to_server="server2"
    )
    resolved = [c for c in alert_changes([done], SHOWN) if c.labels == fired.labels]
    assert len(resolved) == 1 and resolved[0].resolved


def test_a_silent_agent_is_resolved_when_it_reports() -> None:
    silent = events.SERVER_SILENT.make(at=AT, cause="s", server="server2", timeout="15s")
    back = events.SERVER_BACK.make(at=AT, cause="b", server="server2")
    (fired,) = alert_changes([silent], SHOWN)
    (resolved,) = alert_changes([back], SHOWN)
    assert fired.labels == resolved.labels and fired.labels["server"] == "server2"
    assert resolved.resolved


def test_events_that_need_no_person_change_nothing() -> None:
    received = events.ERROR_RECEIVED.make(
        at=AT, cause="f", monitor="am", server="server1", category="HA/AM", device="app1"
    )
    assert alert_changes([received], SHOWN) == []


def test_every_pushed_alert_has_a_runbook_section() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "alerting.md").read_text()
    sections = set(re.findall(r"^### (\S+)$", doc, flags=re.MULTILINE))
    assert {kind.name for kind in KINDS} <= sections
