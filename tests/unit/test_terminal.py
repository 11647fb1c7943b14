"""Text from the bus reaches a terminal escaped: shown, never obeyed."""

from __future__ import annotations

from datetime import UTC, datetime

from mrwbus.messages import Category, MonitorStatusRow, ServerRow, StatusReport
from mrwbus.operators.status_table import render_status
from mrwbus.terminal import printable


def test_plain_text_is_untouched() -> None:
    assert printable("mrw1 on server1: Normal -> Error, ünïcode ok") == (
        "mrw1 on server1: Normal -> Error, ünïcode ok"
    )


def test_control_and_format_characters_are_escaped() -> None:
    assert printable("eth0\x1b[2J\r\n\x07") == "eth0\\x1b[2J\\x0d\\x0a\\x07"
    assert printable("a\u202eb") == "a\\u202eb"  # right-to-left override


def test_the_status_table_shows_a_hostile_device_escaped_and_aligned() -> None:
    row = MonitorStatusRow(
        monitor="mrw1",
        server="server1",
        category=Category.NIC,
        status="Error",
        faults=1,
        restarts=0,
        failovers=0,
        final_action_taken=False,
        last_fault_at=datetime(2026, 11, 25, tzinfo=UTC),
        last_device="eth0\x1b[31mFAKE",
    )
    text = render_status(StatusReport(monitors=[row], groups=[], servers=[]), color=False)
    assert "\x1b" not in text
    assert "eth0\\x1b[31mFAKE" in text


def test_the_status_table_shows_the_broker_nodes() -> None:
    report = StatusReport(
        monitors=[],
        groups=[],
        servers=[
            ServerRow(server="server1", server_group=None, alive=True, agent_node="10.0.0.1:5672"),
            ServerRow(server="server2", server_group=None, alive=False),
        ],
        service_node="10.0.0.3:5672",
    )
    text = render_status(report, color=False)
    assert "AGENT ON NODE" in text and "10.0.0.1:5672" in text
    assert "Service replica answering on node 10.0.0.3:5672" in text
