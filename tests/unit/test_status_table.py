"""The bus in `mrwbus status`: one row per queue, an agent queue growing unconsumed stands out."""

from mrwbus.messages import StatusReport
from mrwbus.messages.bus import BusReport
from mrwbus.operators.status_table import render_status

NOTHING = StatusReport(monitors=[], groups=[], servers=[])


def test_status_shows_the_bus_and_the_stalled_agent(bus_report: BusReport) -> None:
    text = render_status(NOTHING.model_copy(update={"bus": bus_report}))
    assert "Bus (read 20:00:00 UTC from management; 4 dead letters)" in text
    (line,) = [line for line in text.splitlines() if line.startswith("mrwbus.agent.server1")]
    assert line.split()[1:] == ["3", "-", "NOBODY,", "GROWING", "12"]
    assert "mrwbus.faults" in text
    assert "Bus" not in render_status(NOTHING)


def test_the_stalled_agent_queue_is_red_on_a_terminal(bus_report: BusReport) -> None:
    text = render_status(NOTHING.model_copy(update={"bus": bus_report}), color=True)
    (line,) = [line for line in text.splitlines() if "mrwbus.agent.server1" in line]
    assert line.startswith("\033[1;31m") and line.endswith("\033[0m")


def test_a_fenced_server_shows_how_when_and_by_whom() -> None:
    from datetime import UTC, datetime

    from mrwbus.messages import DownRow, ServerRow

    fenced = ServerRow(
        server="server1",
        alive=False,
        down=DownRow(
            how="fenced (off) by server2",
            at=datetime(2026, 12, 6, 1, 2, 3, tzinfo=UTC),
            by="server2",
        ),
    )
    fencing = ServerRow(server="server3", alive=False, fencing="off asked of server2 (silent)")
    text = render_status(NOTHING.model_copy(update={"servers": [fenced, fencing]}))
    assert "DOWN: fenced (off) by server2 at 2026-12-06 01:02:03" in text
    assert "DOWN; fencing: off asked of server2 (silent)" in text
