"""The bus in /metrics and in `mrwbus status`: gauge values, their exposition, the table."""

from collections import Counter
from datetime import UTC, datetime

from mrwbus.bus_messages import BusReport, QueueDepth, RecentDeadLetter
from mrwbus.messages import StatusReport
from mrwbus.metrics import Metrics
from mrwbus.queue_gauges import queue_gauges
from mrwbus.service import Counters, Health
from mrwbus.status_table import render_status
from mrwbus.web.prometheus import render_metrics

AT = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)

BUS = BusReport(
    read_at=AT,
    queues=[
        QueueDepth(queue="mrwbus.faults", role="faults", ready=7, unacked=2, consumers=1),
        QueueDepth(
            queue="mrwbus.agent.s1",
            role="agent",
            server="s1",
            ready=3,
            consumers=0,
            stalled=True,
            oldest_age_seconds=12.5,
        ),
        QueueDepth(queue="mrwbus.dead", role="dead", ready=4, consumers=0),
    ],
    dead_letters=4,
    recent_dead_letters=[
        RecentDeadLetter(
            at=AT, reason="body is not JSON", exchange="mrwbus.faults", routing_key="s1.nic"
        )
    ],
    source="management",
)


def test_no_gauges_before_the_first_reading() -> None:
    assert queue_gauges(None) == []


def test_gauge_values_per_queue() -> None:
    values = {gauge.name: gauge.samples for gauge in queue_gauges(BUS)}
    agent = {"queue": "mrwbus.agent.s1", "role": "agent", "server": "s1"}
    assert (agent, 3.0) in values["mrwbus_queue_messages_ready"]
    assert values["mrwbus_agent_queue_stalled"] == [(agent, 1.0)]
    assert values["mrwbus_queue_messages_unacked"] == [
        ({"queue": "mrwbus.faults", "role": "faults", "server": ""}, 2.0)
    ]
    assert values["mrwbus_queue_oldest_message_age_seconds"] == [(agent, 12.5)]
    assert values["mrwbus_dead_letters"] == [({}, 4.0)]


def test_the_gauges_in_the_text_format() -> None:
    report = StatusReport(monitors=[], groups=[], servers=[], bus=BUS)
    text = render_metrics(Counters(), Health(), Metrics(), report)
    assert 'mrwbus_queue_messages_ready{queue="mrwbus.agent.s1",role="agent",server="s1"} 3' in text
    assert "# TYPE mrwbus_agent_queue_stalled gauge" in text
    assert "\nmrwbus_dead_letters 4\n" in text
    assert (
        Counter(line for line in text.splitlines() if line.startswith("# TYPE")).most_common(1)[0][
            1
        ]
        == 1
    )


def test_status_shows_the_bus_and_the_stalled_agent() -> None:
    text = render_status(StatusReport(monitors=[], groups=[], servers=[], bus=BUS))
    assert "Bus (read 20:00:00 UTC from management; 4 dead letters)" in text
    (line,) = [line for line in text.splitlines() if line.startswith("mrwbus.agent.s1")]
    assert line.split()[1:] == ["3", "-", "NOBODY,", "GROWING", "12"]
    assert "mrwbus.faults" in text and "Bus" not in render_status(
        StatusReport(monitors=[], groups=[], servers=[])
    )
