"""`mrwbus dead list|show|replay|purge`: the operator's hands on `mrwbus.dead`.

`list`, `show` and `purge` work with the operator's own credentials (reading and removing dead
letters: the `operator` role reads `mrwbus.dead`); then they tell the running service what they did, and the service records that as an
event naming who asked (MRW-801, 802, 804). When the service is not running the work is still
done, and the command says it could not be recorded. `replay` asks the service to replay
(`bus/replay.py`): operators may not write where dead letters came from (docs/security.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta

from mrwbus.cli.common import add_group, add_verb, broker_url, checked, operator, run
from mrwbus.config.durations import parse_duration
from mrwbus.errors import BrokerUnavailable, ServiceError
from mrwbus.messages import ControlRequest, ControlVerb, new_id, utc_now
from mrwbus.messages.bus import DeadLetterNote, DeadLetterOperation, DeadLetterReplay
from mrwbus.service.dead_letters import SHORT_ID, DeadLetter, one, render_list, render_show, select
from mrwbus.terminal import printable

DEAD = """list, show, replay or purge the dead-lettered messages in mrwbus.dead

Examples:
    mrwbus dead list
    mrwbus dead show 3f2a9c1b
    mrwbus dead replay --reason "not in the configuration"
    mrwbus dead purge --before 7d
"""

DURATIONS = "90s, 10m, 2h, 1d"

REPLAY_TIMEOUT = 120.0
"""Seconds to wait for the service to replay: thousands of letters take a while."""


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    actions = add_group(
        verbs, "dead", DEAD, actions="what to do with the dead letters: list, show, replay, purge"
    )

    listing = add_verb(actions, "list", list_dead)
    listing.add_argument(
        "--reason", metavar="TEXT", help="only those whose reason contains TEXT (any case)"
    )
    listing.add_argument(
        "--since",
        metavar="DURATION",
        type=checked(parse_duration),
        help=f"only those dead-lettered within DURATION ({DURATIONS})",
    )
    listing.add_argument(
        "--json", action="store_true", help="one JSON object per dead letter, in a list"
    )

    show = add_verb(actions, "show", show_dead)
    show.add_argument(
        "id", metavar="ID", help="its id, or a unique prefix of it (at least 6 characters)"
    )
    show.add_argument("--json", action="store_true", help="the dead letter as one JSON object")

    replay = add_verb(actions, "replay", replay_dead)
    replay.add_argument(
        "ids", nargs="*", metavar="ID", help="the dead letters' ids (or unique prefixes)"
    )
    replay.add_argument(
        "--reason", metavar="TEXT", help="every dead letter whose reason contains TEXT (any case)"
    )

    purge = add_verb(actions, "purge", purge_dead)
    purge.add_argument(
        "--before",
        required=True,
        metavar="DURATION",
        type=checked(parse_duration),
        help=f"remove those dead-lettered longer ago than DURATION ({DURATIONS})",
    )


def list_dead(args: argparse.Namespace) -> int:
    """every dead letter, grouped by reason, oldest first (none is removed)

    Examples:
        mrwbus dead list
        mrwbus dead list --reason "not JSON" --since 2h
        mrwbus dead list --json | jq '.[].reason'
    """

    async def work() -> list[DeadLetter]:
        from mrwbus.service.dead_letter_queue import held_dead_letters

        async with held_dead_letters(broker_url(args)) as held:
            return select(held.letters, reason=args.reason, since=args.since, now=utc_now())

    letters: list[DeadLetter] = run(work())
    if args.json:
        print(json.dumps([letter.as_json() for letter in letters], indent=1))
    else:
        print(render_list(letters))
    _record(args, "list", len(letters), _filters(args))
    return 0


def show_dead(args: argparse.Namespace) -> int:
    """one dead letter: its reason, where it came from, its headers and its whole body

    Examples:
        mrwbus dead show 3f2a9c1b
        mrwbus dead show 3f2a9c1b --json
    """

    async def work() -> DeadLetter:
        from mrwbus.service.dead_letter_queue import held_dead_letters

        async with held_dead_letters(broker_url(args)) as held:
            return one(held.letters, args.id, utc_now())

    letter: DeadLetter = run(work())
    print(
        json.dumps(letter.as_json(whole_body=True), indent=1) if args.json else render_show(letter)
    )
    _record(args, "show", 1, letter.id)
    return 0


def replay_dead(args: argparse.Namespace) -> int:
    """have the service republish dead letters to where they came from (operators only; a
    fault goes through every check again, as sent by whoever sent it first)

    Examples:
        mrwbus dead replay 3f2a9c1b 77d0e2a4
        mrwbus dead replay --reason "server 'server9' is not in the configuration"
    """
    from mrwbus.bus.rpc import ask_service

    if not args.ids and args.reason is None:
        raise ServiceError("name the dead letters to replay: IDs, or --reason TEXT")
    request = ControlRequest(
        id=new_id(),
        verb=ControlVerb.REPLAY,
        by=operator(),
        replay=DeadLetterReplay(ids=args.ids, reason=args.reason),
    )
    reply = run(ask_service(broker_url(args), request, timeout=REPLAY_TIMEOUT))
    if not reply.ok:
        raise ServiceError(f"nothing replayed: {printable(reply.error or '')}")
    for line in reply.text.split("\n"):
        print(printable(line))
    return 0


def purge_dead(args: argparse.Namespace) -> int:
    """remove the dead letters older than DURATION; younger ones stay

    Examples:
        mrwbus dead purge --before 7d
        mrwbus dead purge --before 90m
    """

    async def work() -> list[DeadLetter]:
        from mrwbus.service.dead_letter_queue import held_dead_letters

        async with held_dead_letters(broker_url(args)) as held:
            chosen = select(held.letters, before=args.before, now=utc_now())
            for letter in chosen:
                await held.purge(letter)
            return chosen

    purged: list[DeadLetter] = run(work())
    print(f"{len(purged)} dead letters purged (older than {_text(args.before)}).")
    _record(args, "purge", len(purged), f"older than {_text(args.before)}")
    return 0


def _filters(args: argparse.Namespace, ids: list[str] | None = None) -> str:
    parts = []
    if ids and getattr(args, "ids", None):
        parts.append("ids " + ", ".join(letter_id[:SHORT_ID] for letter_id in ids))
    if getattr(args, "reason", None):
        parts.append(f"reason containing {args.reason!r}")
    if getattr(args, "since", None):
        parts.append(f"since {_text(args.since)}")
    return "; ".join(parts)[:500]


def _text(duration: timedelta) -> str:
    seconds = duration.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _record(
    args: argparse.Namespace, operation: DeadLetterOperation, count: int, selection: str
) -> None:
    """Have the service record the operation as an event; say so when it cannot."""
    from mrwbus.bus.rpc import ask_service

    request = ControlRequest(
        id=new_id(),
        verb=ControlVerb.DEAD_LETTERS,
        by=operator(),
        dead_letters=DeadLetterNote(operation=operation, count=count, selection=selection),
    )
    try:
        reply = run(ask_service(broker_url(args), request))
    except (ServiceError, BrokerUnavailable) as exc:
        print(f"mrwbus: done, but not recorded in the event log: {exc}", file=sys.stderr)
        return
    if not reply.ok:
        print(
            f"mrwbus: done, but not recorded in the event log: {printable(reply.error or '')}",
            file=sys.stderr,
        )
