"""The shipped Grafana dashboard: valid for the dashboard schemaVersion it names, every
query valid PromQL (promtool parses it) reading only metrics the service really exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mrwbus.config.model import ClusterConfig
from tests.unit.alerting.exported import exported_metric_names, metrics_in
from tests.unit.alerting.test_alert_rules import promtool

DASHBOARD = Path(__file__).resolve().parents[3] / "packaging" / "grafana" / "mrwbus-dashboard.json"
SCHEMA_VERSION = 39
"""Grafana 10.x/11.0's dashboard JSON model; Grafana migrates an older or newer one on import."""

PANEL_TYPES = {
    "row", "stat", "timeseries", "table", "state-timeline", "gauge", "bargauge", "text",
    "heatmap", "piechart", "status-history", "barchart", "logs", "alertlist",
}  # fmt: skip
"""Grafana's core panel plugins (a dashboard naming another needs a plugin installed)."""

_GRID = {
    "type": "object",
    "required": ["h", "w", "x", "y"],
    "properties": {
        "h": {"type": "integer", "minimum": 1},
        "w": {"type": "integer", "minimum": 1, "maximum": 24},
        "x": {"type": "integer", "minimum": 0, "maximum": 23},
        "y": {"type": "integer", "minimum": 0},
    },
}
_DATASOURCE = {
    "type": "object",
    "required": ["type", "uid"],
    "properties": {"type": {"const": "prometheus"}, "uid": {"type": "string"}},
}
_TARGET = {
    "type": "object",
    "required": ["refId", "expr"],
    "properties": {
        "refId": {"type": "string", "pattern": "^[A-Z]$"},
        "expr": {"type": "string", "minLength": 1},
        "legendFormat": {"type": "string"},
        "datasource": _DATASOURCE,
    },
}
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Grafana dashboard JSON model, schemaVersion 39 (the fields this dashboard uses)",
    "type": "object",
    "required": ["title", "uid", "schemaVersion", "panels", "templating", "time", "editable"],
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
        "schemaVersion": {"const": SCHEMA_VERSION},
        "editable": {"type": "boolean"},
        "graphTooltip": {"enum": [0, 1, 2]},
        "refresh": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "time": {
            "type": "object",
            "required": ["from", "to"],
            "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
        },
        "timezone": {"enum": ["", "browser", "utc"]},
        "templating": {
            "type": "object",
            "required": ["list"],
            "properties": {
                "list": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "type"],
                        "properties": {
                            "name": {"type": "string"},
                            "type": {
                                "enum": ["query", "datasource", "custom", "constant", "interval"]
                            },
                        },
                    },
                }
            },
        },
        "panels": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "type", "title", "gridPos"],
                "properties": {
                    "id": {"type": "integer", "minimum": 1},
                    "type": {"enum": sorted(PANEL_TYPES)},
                    "title": {"type": "string", "minLength": 1},
                    "gridPos": _GRID,
                    "datasource": _DATASOURCE,
                    "targets": {"type": "array", "items": _TARGET},
                    "fieldConfig": {
                        "type": "object",
                        "required": ["defaults", "overrides"],
                    },
                },
                "if": {"properties": {"type": {"const": "row"}}},
                "then": {"required": ["collapsed", "panels"]},
                "else": {
                    "required": ["datasource", "targets", "fieldConfig"],
                    "properties": {"targets": {"minItems": 1}},
                },
            },
        },
    },
}


def dashboard() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return found


def queries() -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in dashboard()["panels"]
        for target in panel.get("targets", ())
    ]


def test_the_dashboard_is_valid_for_its_schema_version() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(dashboard(), SCHEMA, cls=jsonschema.Draft202012Validator)


def test_panels_have_unique_ids_and_do_not_overlap() -> None:
    panels = dashboard()["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_every_panel_uses_the_datasource_variable() -> None:
    names = {variable["name"] for variable in dashboard()["templating"]["list"]}
    for panel in dashboard()["panels"]:
        if panel["type"] != "row":
            assert re.fullmatch(r"\$\{(\w+)\}", panel["datasource"]["uid"]).group(1) in names  # type: ignore[union-attr]


def test_every_query_reads_only_metrics_the_service_exports(config: ClusterConfig) -> None:
    exported = exported_metric_names(config)
    for title, expr in queries():
        used = metrics_in(expr)
        assert used, f"{title}: {expr} reads no mrwbus metric"
        assert used <= exported, f"{title}: {sorted(used - exported)} not exported"


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as the expression of a recording rule."""
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {
                        "record": f"dashboard:query{index}",
                        "expr": expr.replace("$__rate_interval", "5m"),
                    }
                    for index, (_title, expr) in enumerate(queries())
                ],
            }
        ]
    }
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        pytest.fail(f"a dashboard query is not valid PromQL:\n{done.stdout}{done.stderr}")
