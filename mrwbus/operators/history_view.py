"""History records for people: the filters of `mrwbus history` and the status page, one line
per record that fits a terminal, and one fault's story. Pure: records in, text out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from mrwbus.core.history import DEFAULT_KINDS, HistoryFilter
from mrwbus.terminal import printable

__all__ = ["DEFAULT_KINDS", "HistoryFilter", "command_text", "line", "story_lines", "summary"]

HistoryRecord = dict[str, Any]


def command_text(command: dict[str, Any]) -> str:
    action = command.get("action", "?")
    server = command.get("server", "?")
    group = command.get("group")
    if action == "failover":
        return (
            f"failover {command.get('step', '')} {group} on {server}"
            f" ({command.get('from_server')} -> {command.get('to_server')})"
        )
    if action == "fence":
        return f"fence {command.get('fence_action', '')} {command.get('target')} via {server}"
    return f"{action} {group} on {server}" if group else f"{action} on {server}"


def _when(record: HistoryRecord) -> str:
    return datetime.fromisoformat(record["at"]).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def summary(record: HistoryRecord) -> str:
    """What one record says, in one line (without its time)."""
    kind = record.get("k")
    if kind == "fault":
        fault = record["fault"]
        monitors = ",".join(record.get("monitors") or ()) or "no monitor"
        return (
            f"fault    {fault['server']} {fault['category']} {fault['device']} {fault['state']}"
            f" id={fault['id']} from {record.get('sender') or '?'} -> {monitors}"
        )
    if kind == "decision":
        text = f"decision {record.get('monitor') or '-'} on {record.get('server')}"
        if "step" in record:
            text += f": {record['step']}"
        if "status" in record:
            text += f" -> {record['status']}"
    elif kind == "result":
        result = record["result"]
        text = f"result   {result['server']} {result['outcome']} command={result['command_id']}"
        if result.get("detail"):
            text += f" ({result['detail']})"
    elif kind == "report":
        report = record["report"]
        groups = ",".join(report.get("active_groups", ())) or "no group"
        text = f"report   {report['server']} {report.get('reason')}: {groups}"
    elif kind == "control":
        request = record["request"]
        target = request.get("monitor") or request.get("group") or ""
        text = f"control  {request['verb']} {target} by {request.get('by', '?')}".rstrip()
    elif kind == "tick":
        text = "tick    "
    elif kind == "active":
        return "active   a service replica became active (its clocks restarted)"
    else:
        text = f"{kind}"
    commands = [command_text(command) for command in record.get("commands", ())]
    codes = [event["code"] for event in record.get("events", ())]
    if commands:
        text += " | " + "; ".join(commands)
    if codes:
        text += " | " + " ".join(codes)
    return text


def line(record: HistoryRecord, width: int | None = None) -> str:
    """One record, its time first; cut to `width` columns (a terminal's) when given."""
    text = printable(f"{_when(record)}  {summary(record)}")
    if width is not None and len(text) > width:
        text = text[: max(width - 1, 10)] + "…"
    return text


def story_lines(records: Iterable[HistoryRecord]) -> Iterator[str]:
    """A fault's whole story: each record with its time, then its commands and events."""
    first: datetime | None = None
    for record in records:
        at = datetime.fromisoformat(record["at"])
        first = first or at
        offset = (at - first).total_seconds()
        yield printable(f"{_when(record)}  (+{offset:.3f} s)  {summary(record).split(' | ')[0]}")
        for command in record.get("commands", ()):
            yield printable(f"    command {command['id']}: {command_text(command)}")
        for event in record.get("events", ()):
            yield printable(f"    event {event['code']}: {event.get('text', '')}")
