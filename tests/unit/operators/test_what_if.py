"""`what-if` on a recorded run: the recorded configuration changes nothing; a raised
`max_restarts` changes exactly its monitor's decisions; a narrowed keyword drops its faults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mrwbus.config.loading import parse_config
from mrwbus.config.model import ClusterConfig
from mrwbus.messages import Outcome
from mrwbus.operators.what_if import render_what_if, what_if
from tests.unit.operators.recorded_run import RecordedRun

START = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)

YAML = """\
servers:
  server1: {server_group: site-a}
  server2: {server_group: site-a}
  server3: {server_group: site-b}
groups:
  web: {servers: [server1, server2, server3]}
  db: {servers: [server2, server3, server1]}
service:
  exclude_destinations: same_monitor
  heartbeat_timeout: 5m
monitors:
  mrw1:
    category: NIC
    keyword: eth0
    servers: {server1: {}, server2: {}}
    recovery: {action: restart, target: web, max_restarts: MAX, final_action: none,
               reset_counts_after: 1d, rearm_after: 2m}
  mrw2:
    category: FC
    KEYWORD
    recovery: {action: failover, target: db, max_failovers: 1, final_action: stop_group,
               reset_counts_after: 30m, rearm_after: 2m}
  mrw4:
    category: HA/AM
    keyword: app
    recovery: {action: script, target: web, script: /opt/fix-app.sh, rearm_after: 2m}
  mrw5:
    category: SPS
    recovery: {action: failover, target: web, max_failovers: 2, final_action: none,
               reset_counts_after: 90s, rearm_after: 60s}
"""


def configured(max_restarts: int = 1, keyword: str = "") -> ClusterConfig:
    text = YAML.replace("MAX", str(max_restarts))
    text = text.replace("KEYWORD", f"keyword: {keyword}" if keyword else "")
    return parse_config(text, "cluster.yaml")


@pytest.fixture(scope="module")
def recorded() -> list[dict[str, object]]:
    return RecordedRun(configured(), START).run(10_000)


def test_the_recorded_configuration_changes_nothing(recorded: list[dict[str, object]]) -> None:
    report = what_if(configured(), recorded)
    assert report.faults == 10_000
    assert report.changes == []
    assert report.assumed_results == 0
    assert report.skipped_results == 0


def test_a_raised_max_restarts_changes_exactly_that_monitors_decisions(
    recorded: list[dict[str, object]],
) -> None:
    report = what_if(configured(max_restarts=3), recorded)
    assert report.changes
    assert {change.monitor for change in report.changes} == {"mrw1"}
    for change in report.changes:  # each was left alone (exhausted), and is now restarted
        assert change.old == []
        assert change.new and all(text.startswith("restart web") for text in change.new)
        assert change.assumed == change.new
    text = render_what_if(report, Outcome.SUCCEEDED)
    assert f"{len(report.changes)} decisions changed" in text
    assert "monitor mrw1:" in text and "monitor mrw2:" not in text
    assert text.count("->  restart web") == len(report.changes)


def test_a_narrowed_keyword_drops_the_faults_it_no_longer_matches(
    recorded: list[dict[str, object]],
) -> None:
    report = what_if(configured(keyword="host1"), recorded, assume=Outcome.FAILED)
    assert report.changes
    assert {change.monitor for change in report.changes} == {"mrw2"}
    assert any(change.new == [] for change in report.changes)


def test_only_the_range_is_reported(recorded: list[dict[str, object]]) -> None:
    since = START + timedelta(days=3)
    report = what_if(configured(max_restarts=3), recorded, since=since)
    whole = what_if(configured(max_restarts=3), recorded)
    assert 0 < report.faults < 10_000
    assert all(datetime.fromisoformat(change.at) >= since for change in report.changes)
    assert {c.fault_id for c in report.changes} <= {c.fault_id for c in whole.changes}
