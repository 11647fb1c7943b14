"""`mrwbus history [show|export]` and `mrwbus what-if`: what happened, and what another
configuration would have done with it (docs/history.md)."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from mrwbus.cli.common import _documented, add_broker_options, broker_url, checked, run
from mrwbus.config.durations import parse_duration
from mrwbus.errors import MrwbusError
from mrwbus.messages import Category, Outcome

HISTORY = """list what happened (the last hour by default), filtered; or show one fault; or export

Examples:
    mrwbus history --since 12h --monitor mrw1
    mrwbus history --since 2026-11-24T22:00 --until 2026-11-25T06:00 --code MRW-201
    mrwbus history --follow --server server1 --json
    mrwbus history show 7f3c2a...                 # the whole story of one fault
    mrwbus history export --since 7d > week.jsonl
"""

WHAT_IF = """what would another configuration have done with the recorded faults (old -> new)?

Examples:
    mrwbus what-if --config new.yaml --since 7d
    mrwbus what-if --config new.yaml --history week.jsonl            # no broker needed
    mrwbus what-if --config new.yaml --history week.jsonl --assume failed
"""


def when(text: str) -> datetime:
    """An RFC 3339 time (UTC unless it says otherwise) or a duration ago (90s, 10m, 2h, 7d)."""
    try:
        return datetime.now(UTC) - parse_duration(text)
    except ValueError:
        pass
    try:
        found = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(
            f"{text!r} is neither a time (2026-11-25T06:00) nor a duration (7d)"
        ) from exc
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def _range(parser: argparse.ArgumentParser, default_since: str | None) -> None:
    parser.add_argument(
        "--since",
        type=checked(when),
        default=when(default_since) if default_since else None,
        metavar="TIME",
        help="from this time, or this long ago (default: "
        + (default_since + " ago" if default_since else "the history's start")
        + ")",
    )
    parser.add_argument("--until", type=checked(when), metavar="TIME", help="up to this time")


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    history = _documented(verbs, "history", HISTORY)
    history.set_defaults(verb=list_history, one_shot=True)
    add_broker_options(history)
    _range(history, "1h")
    history.add_argument("--monitor", metavar="NAME", help="only records about this monitor")
    history.add_argument("--server", metavar="NAME", help="only records about this server")
    history.add_argument("--group", metavar="NAME", help="only records about this group")
    history.add_argument(
        "--category", choices=[c.value for c in Category], help="only faults of this category"
    )
    history.add_argument("--code", metavar="MRW-NNN", help="only records with this event code")
    history.add_argument(
        "--outcome", choices=[o.value for o in Outcome], help="only results with this outcome"
    )
    history.add_argument(
        "--kind",
        action="append",
        choices=["fault", "decision", "result", "report", "control", "tick", "active"],
        help="only these kinds of record (repeat it; default: all but reports that decided nothing)",
    )
    history.add_argument("--follow", action="store_true", help="go on with new records")
    history.add_argument("--json", action="store_true", help="one JSON object a line")
    actions = history.add_subparsers(required=False, metavar="ACTION", help="show or export")

    show = _documented(
        actions,
        "show",
        "the whole story of one fault, with times\n\nExamples:\n    mrwbus history show ID",
    )
    show.set_defaults(verb=show_fault, one_shot=True)
    add_broker_options(show)
    show.add_argument("fault_id", metavar="FAULT_ID", help="the fault's id, as listed")
    show.add_argument("--json", action="store_true", help="its records, one JSON object a line")

    export = _documented(
        actions,
        "export",
        "every record of a range, one JSON object a line, for archives and what-if --history"
        "\n\nExamples:\n    mrwbus history export --since 7d > week.jsonl",
    )
    export.set_defaults(verb=export_history, one_shot=True)
    add_broker_options(export)
    _range(export, None)

    what_if = _documented(verbs, "what-if", WHAT_IF)
    what_if.set_defaults(verb=what_if_verb, one_shot=True)
    add_broker_options(what_if)
    what_if.add_argument(
        "--config",
        required=True,
        metavar="NEW.yaml",
        type=Path,
        help="the configuration to try (YAML)",
    )
    _range(what_if, None)
    what_if.add_argument(
        "--history", metavar="FILE", type=Path, help="an export to replay instead of the stream"
    )
    what_if.add_argument(
        "--assume",
        choices=["succeeded", "failed", "timeout"],
        default="succeeded",
        help="the result of a command the history does not hold (default: succeeded)",
    )


def _filter(args: argparse.Namespace) -> Callable[[dict[str, Any]], bool]:
    from mrwbus.operators.history_view import DEFAULT_KINDS, HistoryFilter

    return HistoryFilter(
        monitor=args.monitor,
        server=args.server,
        group=args.group,
        category=args.category,
        code=args.code,
        outcome=args.outcome,
        kinds=frozenset(args.kind) if args.kind else DEFAULT_KINDS,
    )


async def _read(args: argparse.Namespace, on_record: Callable[[dict[str, Any]], bool]) -> None:
    from mrwbus.bus.connection import connect_any
    from mrwbus.bus.history_reader import read_history

    follow = None
    if getattr(args, "follow", False):
        follow = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, follow.set)
    connection = await connect_any(broker_url(args), "mrwbus-history")
    try:
        await read_history(connection, on_record, since=args.since, until=args.until, follow=follow)
    finally:
        await connection.close()


def _json_line(record: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(record).decode() + "\n")


def list_history(args: argparse.Namespace) -> int:
    from mrwbus.operators.history_view import line

    wanted = _filter(args)
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None

    def show(record: dict[str, Any]) -> bool:
        if wanted(record):
            if args.json:
                _json_line(record)
            else:
                print(line(record, width), flush=args.follow)
        return False

    run(_read(args, show))
    return 0


def show_fault(args: argparse.Namespace) -> int:
    """the whole story of one fault, with times"""
    from mrwbus.bus.connection import connect_any
    from mrwbus.bus.history_reader import fault_story
    from mrwbus.operators.history_view import story_lines

    async def story() -> list[dict[str, Any]]:
        connection = await connect_any(broker_url(args), "mrwbus-history")
        try:
            return (await fault_story(connection, args.fault_id)).records
        finally:
            await connection.close()

    records = run(story())
    if not records:
        raise MrwbusError(f"fault {args.fault_id} is not in the history")
    for record in records:
        if args.json:
            _json_line(record)
    if not args.json:
        print("\n".join(story_lines(records)))
    return 0


def export_history(args: argparse.Namespace) -> int:
    """every record of a range, one JSON object a line"""

    def write(record: dict[str, Any]) -> bool:
        _json_line(record)
        return False

    run(_read(args, write))
    return 0


def what_if_verb(args: argparse.Namespace) -> int:
    from mrwbus.operators.what_if import render_what_if, what_if
    from mrwbus.relay.registry import load_config

    config = load_config(str(args.config))
    outcome = Outcome.TIMED_OUT if args.assume == "timeout" else Outcome(args.assume)
    records: list[dict[str, Any]] = []
    if args.history is not None:
        records = load_export(args.history, args.until)
    else:
        until = args.until

        def keep(record: dict[str, Any]) -> bool:
            records.append(record)
            return False

        # From the history's start: the state the range starts from is built by the replay.
        args.since, since = None, args.since
        run(_read(args, keep))
        args.since, args.until = since, until
    report = what_if(config, records, since=args.since, assume=outcome)
    print(render_what_if(report, outcome))
    return 0


def load_export(path: Path, until: datetime | None) -> list[dict[str, Any]]:
    records = []
    try:
        with path.open("rb") as lines:
            for number, text in enumerate(lines, 1):
                if not text.strip():
                    continue
                try:
                    record = orjson.loads(text)
                except orjson.JSONDecodeError as exc:
                    raise MrwbusError(f"{path}:{number}: not JSON: {exc}") from exc
                if until is not None and datetime.fromisoformat(record["at"]) > until:
                    break
                records.append(record)
    except OSError as exc:
        raise MrwbusError(f"cannot read {path}: {exc.strerror}") from exc
    return records
