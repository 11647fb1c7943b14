"""The Prometheus exposition: exact text for known values, and the grammar for all of it."""

from __future__ import annotations

import math
import re
from collections import Counter

import pytest
from prometheus_client import Histogram

from mrwbus.bus.health import Counters, Health
from mrwbus.messages import Category, GroupRow, MonitorStatusRow, ServerRow, StatusReport
from mrwbus.messages.bus import BusReport
from mrwbus.telemetry.exposition import (
    Metrics,
    counter,
    gauge,
    histogram,
    labelled,
    render_text,
)
from mrwbus.web.prometheus import bus_families, exposition, render_metrics

# Text format 0.0.4 as prometheus_client writes it: `name{label="value",...} value`, the value
# a float (`3.0`), +Inf, -Inf or NaN.
_SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
    r'(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\})? '
    r"(-?[0-9.]+(e[+-]?[0-9]+)?|[+-]Inf|NaN)$"
)
_COMMENT = re.compile(
    r"^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram))$"
)


def assert_valid_exposition(text: str) -> None:
    assert text.endswith("\n")
    for line in text.splitlines():
        assert _SAMPLE.match(line) or _COMMENT.match(line), f"not text format 0.0.4: {line!r}"


def samples(text: str) -> dict[str, str]:
    """`name{labels}` -> value, for every sample line."""
    return dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))


def row(monitor: str, server: str, status: str, **extra: object) -> MonitorStatusRow:
    return MonitorStatusRow.model_validate(
        {
            "monitor": monitor,
            "server": server,
            "category": Category.NIC,
            "status": status,
            "faults": 0,
            "restarts": 0,
            "failovers": 0,
            "final_action_taken": False,
            **extra,
        }
    )


REPORT = StatusReport(
    monitors=[
        row("mrw1", "server1", "Error", faults=1, failovers=1),
        row("mrw1", "server2", "Normal"),
        row("mrw2", "server1", "Error"),
        row("mrw3", "server1", "Suspended"),
    ],
    groups=[GroupRow(group="failover1", server="server2")],
    servers=[ServerRow(server="server1", server_group=None, alive=True)],
)


def test_scalar_families_exact_text() -> None:
    text = render_text(
        [
            counter("mrwbus_faults_matched_total", "Faults that matched.", 3),
            gauge("mrwbus_consuming", "1 while consuming.", True),
        ]
    )
    assert text == (
        "# HELP mrwbus_faults_matched_total Faults that matched.\n"
        "# TYPE mrwbus_faults_matched_total counter\n"
        "mrwbus_faults_matched_total 3.0\n"
        "# HELP mrwbus_consuming 1 while consuming.\n"
        "# TYPE mrwbus_consuming gauge\n"
        "mrwbus_consuming 1.0\n"
    )


def test_labelled_family_lists_known_values_at_zero_sorted() -> None:
    family = labelled(
        "mrwbus_commands_total", "counter", "Commands.", "action", {"restart": 2}, ["failover"]
    )
    assert render_text([family]).splitlines()[2:] == [
        'mrwbus_commands_total{action="failover"} 0.0',
        'mrwbus_commands_total{action="restart"} 2.0',
    ]


def test_label_values_and_help_are_escaped() -> None:
    family = labelled("m", "gauge", 'back\\slash\nnewline "quoted"', "l", {'a"b\\c\nd': 1})
    text = render_text([family])
    assert text.splitlines() == [
        '# HELP m back\\\\slash\\nnewline "quoted"',
        "# TYPE m gauge",
        'm{l="a\\"b\\\\c\\nd"} 1.0',
    ]
    assert_valid_exposition(text)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "0.0"),
        (7, "7.0"),
        (0.25, "0.25"),
        (1e-05, "1e-05"),
        (math.inf, "+Inf"),
        (math.nan, "NaN"),
    ],
)
def test_values(value: float, shown: str) -> None:
    assert render_text([gauge("g", "h", value)]).splitlines()[-1] == f"g {shown}"


def test_histogram_buckets_are_cumulative_and_inclusive() -> None:
    observed = Histogram("lat_seconds", "Latency.", buckets=(0.1, 1.0), registry=None)
    for seconds in (0.05, 0.1, 0.5, 3.0):
        observed.observe(seconds)
    lines = render_text([histogram(observed)]).splitlines()
    assert lines == [
        "# HELP lat_seconds Latency.",
        "# TYPE lat_seconds histogram",
        'lat_seconds_bucket{le="0.1"} 2.0',  # 0.1 itself counts in le="0.1"
        'lat_seconds_bucket{le="1.0"} 3.0',
        'lat_seconds_bucket{le="+Inf"} 4.0',
        "lat_seconds_count 4.0",
        "lat_seconds_sum 3.65",
    ]


def test_histogram_refuses_unsorted_bounds() -> None:
    with pytest.raises(ValueError, match="sorted"):
        Histogram("lat_seconds", "Latency.", buckets=(1.0, 0.5), registry=None)


def test_service_metrics_show_the_counters() -> None:
    counters = Counters(
        faults_by_category=Counter({"NIC": 2, "HA/SS": 1}),
        matched=2,
        unmatched=1,
        dead_lettered=4,
        commands_by_action=Counter({"failover": 2}),
        results_by_outcome=Counter({"succeeded": 2}),
    )
    metrics = Metrics()
    metrics.observe_fault_to_command(0.012)
    health = Health(connected=True, consuming=False, outages=3)

    text = render_metrics(counters, health, metrics, REPORT)

    assert_valid_exposition(text)
    values = samples(text)
    assert values['mrwbus_faults_received_total{category="NIC"}'] == "2.0"
    assert values['mrwbus_faults_received_total{category="HA/SS"}'] == "1.0"
    assert values['mrwbus_faults_received_total{category="SPS"}'] == "0.0"
    assert values["mrwbus_faults_matched_total"] == "2.0"
    assert values["mrwbus_faults_unmatched_total"] == "1.0"
    assert values["mrwbus_dead_lettered_total"] == "4.0"
    assert values['mrwbus_commands_total{action="failover"}'] == "2.0"
    assert values['mrwbus_commands_total{action="restart"}'] == "0.0"
    assert values['mrwbus_results_total{outcome="succeeded"}'] == "2.0"
    assert values['mrwbus_results_total{outcome="timed_out"}'] == "0.0"
    assert values["mrwbus_monitors_in_error"] == "2.0"  # per server; Suspended is not Error
    assert values['mrwbus_fault_to_command_seconds_bucket{le="0.01"}'] == "0.0"
    assert values['mrwbus_fault_to_command_seconds_bucket{le="0.025"}'] == "1.0"
    assert values['mrwbus_fault_to_command_seconds_bucket{le="+Inf"}'] == "1.0"
    assert values["mrwbus_fault_to_command_seconds_count"] == "1.0"
    assert values["mrwbus_broker_connected"] == "1.0"
    assert values["mrwbus_consuming"] == "0.0"
    assert values["mrwbus_broker_outages_total"] == "3.0"


def test_every_family_has_help_and_type_once() -> None:
    text = render_metrics(Counters(), Health(), Metrics(), REPORT)
    types = re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE)
    helps = re.findall(r"^# HELP (\S+) ", text, re.MULTILINE)
    assert types == helps
    assert len(types) == len(set(types))
    assert set(types) >= {
        "mrwbus_faults_received_total",
        "mrwbus_faults_matched_total",
        "mrwbus_faults_unmatched_total",
        "mrwbus_dead_lettered_total",
        "mrwbus_commands_total",
        "mrwbus_results_total",
        "mrwbus_monitors_in_error",
        "mrwbus_fault_to_command_seconds",
        "mrwbus_broker_connected",
        "mrwbus_consuming",
    }


def test_openmetrics_when_the_scraper_asks_for_it() -> None:
    body, content_type = exposition(
        Counters(matched=2),
        Health(),
        Metrics(),
        REPORT,
        "application/openmetrics-text; version=1.0.0",
    )
    text = body.decode()
    assert content_type.startswith("application/openmetrics-text")
    assert text.endswith("# EOF\n")
    assert "# TYPE mrwbus_faults_matched counter" in text
    assert "mrwbus_faults_matched_total 2.0" in text


def test_text_format_and_process_metrics_by_default() -> None:
    body, content_type = exposition(Counters(), Health(), Metrics(), REPORT, None)
    text = body.decode()
    assert content_type.startswith("text/plain; version=0.0.4")
    assert_valid_exposition(text)
    assert "process_cpu_seconds_total" in text  # prometheus_client's process collector (Linux)


# --- the bus, as the service last read it ---------------------------------------------------


def test_no_queue_gauges_before_the_first_reading() -> None:
    assert bus_families(None) == []
    text = render_metrics(Counters(), Health(), Metrics(), REPORT)
    assert "mrwbus_queue_" not in text and "mrwbus_dead_letters " not in text


def test_queue_gauges_one_sample_per_queue(bus_report: BusReport) -> None:
    report = REPORT.model_copy(update={"bus": bus_report})
    text = render_metrics(Counters(), Health(), Metrics(), report)
    assert_valid_exposition(text)
    values = samples(text)
    agent = '{queue="mrwbus.agent.server1",role="agent",server="server1"}'
    faults = '{queue="mrwbus.faults",role="faults",server=""}'
    assert values[f"mrwbus_queue_messages_ready{agent}"] == "3.0"
    assert values[f"mrwbus_queue_messages_ready{faults}"] == "7.0"
    assert values[f"mrwbus_queue_consumers{faults}"] == "1.0"
    assert values[f"mrwbus_agent_queue_stalled{agent}"] == "1.0"
    assert values[f"mrwbus_queue_oldest_message_age_seconds{agent}"] == "12.5"
    assert values["mrwbus_dead_letters"] == "4.0"
    # Only what the broker said: unacked from the management API, stalled for agent queues.
    assert [key for key in values if key.startswith("mrwbus_queue_messages_unacked")] == [
        f"mrwbus_queue_messages_unacked{faults}"
    ]
    assert [key for key in values if key.startswith("mrwbus_agent_queue_stalled")] == [
        f"mrwbus_agent_queue_stalled{agent}"
    ]
    assert "# TYPE mrwbus_agent_queue_stalled gauge" in text
