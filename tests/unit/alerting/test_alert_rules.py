"""The shipped Prometheus rules: valid (`promtool check rules`), behaving as their tests say
(`promtool test rules`: for each rule a series that fires it and one that does not), each with
a severity, a summary and a runbook anchor that exists, and reading only real metrics.

promtool comes with Debian's `prometheus` package; without it these tests fail, never skip."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mrwbus.config.model import ClusterConfig
from tests.unit.alerting.exported import exported_metric_names, metrics_in

ROOT = Path(__file__).resolve().parents[3]
RULES_DIR = ROOT / "packaging" / "prometheus"
RULES = RULES_DIR / "mrwbus-rules.yml"
RULE_TESTS = RULES_DIR / "mrwbus-rules.test.yml"
ALERTING_DOC = ROOT / "docs" / "alerting.md"

FENCING_METRICS = {"mrwbus_fence_failures_total", "mrwbus_servers_fenced"}
"""Exported by fencing (issue 26), built beside this; the rules for them are tested here."""


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is not installed: install Debian's `prometheus` package "
            "(apt-get install prometheus); the alerting rules cannot be tested without it"
        )
    return found


def run_promtool(*args: str) -> str:
    done = subprocess.run(
        [promtool(), *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=120
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_checks_the_rules() -> None:
    output = run_promtool("check", "rules", RULES.name)
    assert f"SUCCESS: {len(rules())} rules found" in output


def test_promtool_runs_the_rule_tests() -> None:
    output = run_promtool("test", "rules", RULE_TESTS.name)
    assert "SUCCESS" in output


def test_every_rule_is_tested_firing_and_not() -> None:
    """promtool compares the whole list of alerts: a case that expects one alert from more
    series than that shows the other series do not fire it."""
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    beside_a_quiet_series = {
        check["alertname"]
        for case in tests
        for check in case["alert_rule_test"]
        if check["exp_alerts"] and len(case["input_series"]) > len(check["exp_alerts"])
    }
    assert beside_a_quiet_series == {rule["alert"] for rule in rules()}


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_every_rule_has_severity_summary_and_a_runbook_that_exists(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert rule["annotations"]["summary"]
    runbook = rule["annotations"]["runbook_url"]
    assert runbook == f"docs/alerting.md#{rule['alert'].lower()}"
    headings = re.findall(r"^#+ (.+)$", ALERTING_DOC.read_text(), flags=re.MULTILINE)
    assert rule["alert"] in {heading.strip("` ") for heading in headings}


def test_the_rules_read_only_metrics_the_service_exports(config: ClusterConfig) -> None:
    exported = exported_metric_names(config)
    used = set().union(*(metrics_in(rule["expr"]) for rule in rules()))
    assert used - exported - FENCING_METRICS == set()
    assert used >= FENCING_METRICS
