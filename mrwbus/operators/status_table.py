"""The status table operators read in a terminal: aligned columns, Error standing out."""

from __future__ import annotations

from collections.abc import Sequence

from mrwbus.messages import ServerRow, StatusReport
from mrwbus.messages.bus import BusReport
from mrwbus.terminal import printable

_RED_BOLD = "\033[1;31m"
_YELLOW = "\033[33m"
_RESET = "\033[0m"
_COLORS = {"Error": _RED_BOLD, "Suspended": _YELLOW, "Offline": _YELLOW}


def _table(
    headers: Sequence[str], raw: Sequence[Sequence[str]], color_column: int | None, color: bool
) -> list[str]:
    # Escaped before measuring: the columns line up with what the terminal shows.
    rows = [[printable(cell) for cell in row] for row in raw]
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        if color and color_column is not None and row[color_column] in _COLORS:
            cells[color_column] = f"{_COLORS[row[color_column]]}{cells[color_column]}{_RESET}"
        lines.append("  ".join(cells).rstrip())
    return lines


def render_status(report: StatusReport, *, color: bool = False) -> str:
    monitors = [
        [
            row.monitor,
            row.server,
            row.category.value,
            row.status,
            str(row.faults),
            str(row.restarts),
            str(row.failovers),
            "yes" if row.final_action_taken else "-",
            row.last_fault_at.strftime("%Y-%m-%d %H:%M:%S") if row.last_fault_at else "-",
            row.last_device or "-",
        ]
        for row in report.monitors
    ]
    headers = [
        "MONITOR",
        "SERVER",
        "CATEGORY",
        "STATUS",
        "FAULTS",
        "RESTARTS",
        "FAILOVERS",
        "FINAL",
        "LAST FAULT (UTC)",
        "DEVICE",
    ]
    errors = sum(1 for row in report.monitors if row.status == "Error")
    lines = [f"Monitors ({errors} in Error)"]
    lines += _table(headers, monitors, color_column=3, color=color)
    lines += ["", "Groups"]
    lines += _table(
        ["GROUP", "ACTIVE ON"],
        [[g.group, g.server or "(stopped)"] for g in report.groups],
        None,
        color,
    )
    lines += ["", "Servers"]
    lines += _table(
        ["SERVER", "SERVER GROUP", "STATE", "AGENT ON NODE"],
        [
            [s.server, s.server_group or "-", _server_state(s), s.agent_node or "-"]
            for s in report.servers
        ],
        None,
        color,
    )
    notes = [f"  {s.server}: {note}" for s in report.servers for note in s.executor_notes]
    if notes:
        lines += ["", "Recovered by the executor itself (reports, not faults)", *notes]
    lines += ["", f"Service replica answering on node {report.service_node or '-'}"]
    if report.bus is not None:
        lines += ["", *render_bus(report.bus, color=color)]
    return "\n".join(lines)


def render_bus(bus: BusReport, *, color: bool = False) -> list[str]:
    """The queues: what waits where, who consumes, and agent queues growing unconsumed."""
    rows = []
    for queue in bus.queues:
        if queue.stalled:
            consumer = "NOBODY, GROWING"
        elif queue.consumers:
            consumer = "consuming" if queue.consumers == 1 else f"{queue.consumers} consumers"
        else:
            consumer = "-" if queue.role == "dead" else "nobody"
        age = queue.oldest_age_seconds
        rows.append(
            [
                queue.queue,
                str(queue.ready),
                "-" if queue.unacked is None else str(queue.unacked),
                consumer,
                "-" if age is None else f"{age:.0f}",
            ]
        )
    lines = [
        f"Bus (read {bus.read_at:%H:%M:%S} UTC from {printable(bus.source)};"
        f" {bus.dead_letters} dead letters)"
    ]
    table = _table(["QUEUE", "WAITING", "UNACKED", "CONSUMER", "OLDEST (S)"], rows, None, color)
    if color:
        table = [
            f"{_RED_BOLD}{line}{_RESET}" if "NOBODY, GROWING" in line else line for line in table
        ]
    return lines + table


def _server_state(row: ServerRow) -> str:
    """alive, DOWN (silent), or how, when and by whom it was fenced or taken down; and a
    fence under way."""
    if row.down is not None:
        state = f"DOWN: {row.down.how} at {row.down.at:%Y-%m-%d %H:%M:%S}"
    else:
        state = "alive" if row.alive else "DOWN"
    return f"{state}; fencing: {row.fencing}" if row.fencing else state
