"""What the page's event stream says: a snapshot first, then events with the status after
them, and status or health changes that came without an event."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from mrwbus.messages import Event, EventKind, GroupRow, ServerRow, StatusReport
from mrwbus.service.service import Health
from mrwbus.web.healthz import HealthReport, assess
from mrwbus.web.stream import KEEPALIVE, StatusStream, sse_message

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def parse(chunk: bytes) -> tuple[str, dict[str, Any]]:
    text = chunk.decode()
    assert text.endswith("\n\n")
    kind_line, data_line = text[:-2].split("\n")
    assert kind_line.startswith("event: ") and data_line.startswith("data: ")
    return kind_line.removeprefix("event: "), json.loads(data_line.removeprefix("data: "))


class World:
    def __init__(self) -> None:
        self.placement = "server1"
        self.health = Health(connected=True, consuming=True)

    def status(self) -> StatusReport:
        return StatusReport(
            monitors=[],
            groups=[GroupRow(group="failover1", server=self.placement)],
            servers=[ServerRow(server="server1", server_group=None, alive=True)],
        )

    def health_report(self) -> HealthReport:
        return assess(self.health)


def event(code: str) -> Event:
    return Event(id=f"id-{code}", kind=EventKind.STATUS, code=code, text="t", at=AT)


def test_sse_message_is_one_event_one_data_line() -> None:
    assert sse_message("update", {"a": "x\ny"}) == b'event: update\ndata: {"a":"x\\ny"}\n\n'
    assert KEEPALIVE.startswith(b":")


def test_opening_snapshot_then_updates_then_changes_without_events() -> None:
    world = World()
    stream = StatusStream(world.status, world.health_report)

    kind, data = parse(stream.opening([event("MRW-101")]))
    assert kind == "snapshot"
    assert data["status"]["groups"] == [{"group": "failover1", "server": "server1"}]
    assert data["health"]["status"] == "ok"
    assert [e["code"] for e in data["events"]] == ["MRW-101"]
    assert "fault_id" not in data["events"][0]  # as mrwbus.events carries it

    assert stream.on_tick() is None  # nothing changed

    world.placement = "server2"
    kind, data = parse(stream.on_event(event("MRW-102")))
    assert kind == "update"
    assert data["event"]["code"] == "MRW-102"
    assert data["status"]["groups"][0]["server"] == "server2"
    assert stream.on_tick() is None  # the update already carried it

    world.health = Health(connected=False, consuming=False, last_error="gone")
    kind, data = parse(stream.on_tick() or b"")
    assert kind == "status"
    assert data["health"]["status"] == "degraded"
    assert stream.on_tick() is None


def test_a_queue_reading_that_found_nothing_new_sends_nothing() -> None:
    from mrwbus.messages.bus import BusReport, QueueDepth

    def bus(read_at: datetime, ready: int) -> BusReport:
        depth = QueueDepth(queue="mrwbus.faults", role="faults", ready=ready, consumers=1)
        return BusReport(read_at=read_at, queues=[depth], dead_letters=0, source="amqp")

    world = World()
    reading = [bus(AT, 0)]
    stream = StatusStream(
        lambda: world.status().model_copy(update={"bus": reading[0]}), world.health_report
    )
    stream.opening([])
    reading[0] = bus(AT.replace(second=7), 0)
    assert stream.on_tick() is None
    reading[0] = bus(AT.replace(second=9), 4)
    kind, data = parse(stream.on_tick() or b"")
    assert kind == "status" and data["status"]["bus"]["queues"][0]["ready"] == 4
