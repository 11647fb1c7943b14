"""Dead letters as operators see them: why, from where, when, and what; pure, no I/O.

Two kinds reach `mrwbus.dead`:
- copies the service or an agent made of a message it could not process: they carry
  `x-mrwbus-error` (why), `x-mrwbus-exchange` and `x-mrwbus-routing-key` (where it came from),
  `x-mrwbus-dead-id` (their own id) and the AMQP `timestamp` (when);
- messages the broker dead-lettered itself (a poison message past the delivery limit): they
  carry RabbitMQ's `x-death` header, whose first entry says why, from which queue, exchange and
  routing key, and when.
`mrwbus.service.dead_letter_queue` reads them off the queue; this module describes, filters and prints.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mrwbus.bus.identity import SENDER_HEADER, UNKNOWN_SENDER, effective_sender
from mrwbus.bus.topology import (
    COMMANDS,
    CONTROL,
    DEAD_AT_HEADER,
    DEAD_ID_HEADER,
    ERROR_HEADER,
    FAULTS,
    RESULTS,
)
from mrwbus.errors import ServiceError
from mrwbus.terminal import printable

BODY_PREVIEW = 80
"""Characters of the body shown by `dead list`."""

SHORT_ID = 8
"""Characters of an id shown by `dead list`; any unique prefix of at least `MIN_PREFIX` works."""

MIN_PREFIX = 6

REPLAYABLE = (FAULTS, RESULTS, CONTROL, COMMANDS)
"""The exchanges a dead letter may be replayed to: those whose consumers check who sent what."""

_OWN_HEADERS = (
    ERROR_HEADER,
    "x-mrwbus-exchange",
    "x-mrwbus-routing-key",
    DEAD_ID_HEADER,
    DEAD_AT_HEADER,
    SENDER_HEADER,
)
_BROKER_HEADERS = ("x-death", "x-delivery-count", "x-first-death-exchange")
_BROKER_REASONS = {
    "delivery_limit": "delivered too many times without an acknowledgement (a poison message)",
    "rejected": "rejected by its consumer",
    "expired": "expired before anyone consumed it",
    "maxlen": "dropped because its queue was full",
}


@dataclass(frozen=True)
class DeadLetter:
    id: str
    reason: str
    exchange: str
    routing_key: str
    queue: str | None
    """The queue it was dead-lettered from (broker dead letters only)."""
    at: datetime | None
    message_id: str | None
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
    content_type: str | None = None
    user_id: str | None = None
    """The AMQP `user_id` of the dead letter: who made it (the service, an agent), or for one
    the broker dead-lettered, who published the original."""

    @property
    def sender(self) -> str | None:
        """Who sent the original message, as far as mrwbus can vouch for it (`senders`)."""
        return effective_sender(self.user_id, self.headers)

    @property
    def source(self) -> str:
        where = self.exchange or "(default exchange)"
        return f"{where} {self.routing_key}".strip()

    def preview(self, limit: int = BODY_PREVIEW) -> str:
        text = self.body[:limit].decode("utf-8", errors="replace")
        text = "".join(ch if ch.isprintable() else "\ufffd" for ch in text)
        return text + ("..." if len(self.body) > limit else "")

    def as_json(self, *, whole_body: bool = False) -> dict[str, Any]:
        return {
            "id": self.id,
            "reason": self.reason,
            "exchange": self.exchange,
            "routing_key": self.routing_key,
            "queue": self.queue,
            "at": self.at.isoformat() if self.at else None,
            "message_id": self.message_id,
            "body": self.body.decode("utf-8", errors="replace") if whole_body else self.preview(),
            "body_bytes": len(self.body),
        }


def describe(
    body: bytes,
    headers: Mapping[str, Any] | None,
    *,
    message_id: str | None,
    timestamp: datetime | None,
    content_type: str | None = None,
    user_id: str | None = None,
) -> DeadLetter:
    """A message read from `mrwbus.dead`, as an operator reads it."""
    headers = dict(headers or {})
    death = _first_death(headers)
    if ERROR_HEADER in headers:
        reason = _text(headers[ERROR_HEADER])
        exchange = _text(headers.get("x-mrwbus-exchange", ""))
        routing_key = _text(headers.get("x-mrwbus-routing-key", ""))
        queue = None
        at = _parse_time(headers.get(DEAD_AT_HEADER)) or timestamp
    elif death is not None:
        why = _text(death.get("reason", "unknown"))
        queue = _text(death.get("queue", "")) or None
        reason = f"dead-lettered by the broker from {queue}: {_BROKER_REASONS.get(why, why)}"
        exchange = _text(death.get("exchange", ""))
        keys = death.get("routing-keys") or [""]
        routing_key = _text(keys[0])
        at = _aware(death.get("time")) or timestamp
    else:
        reason, exchange, routing_key, queue, at = (
            "unknown (no reason recorded)",
            "",
            "",
            None,
            None,
        )
    own = headers.get(DEAD_ID_HEADER)
    return DeadLetter(
        id=_text(own) if own else _derived_id(body, message_id, headers),
        reason=reason,
        exchange=exchange,
        routing_key=routing_key,
        queue=queue,
        at=_aware(at),
        message_id=message_id,
        body=body,
        headers=headers,
        content_type=content_type,
        user_id=user_id,
    )


def replay_headers(letter: DeadLetter, by: str) -> dict[str, Any]:
    """The headers a replayed message carries: the dead-letter bookkeeping removed, who
    replayed it and who sent the original added (the service republishes it as itself, and
    its receivers judge it as sent by the original sender: `bus.identity.effective_sender`)."""
    kept = {
        key: value
        for key, value in letter.headers.items()
        if key not in _OWN_HEADERS and key not in _BROKER_HEADERS
    }
    kept["x-mrwbus-replayed-by"] = by
    kept[SENDER_HEADER] = letter.sender or UNKNOWN_SENDER
    return kept


def one(letters: list[DeadLetter], prefix: str, now: datetime) -> DeadLetter:
    """The one letter whose id starts with `prefix`, or `ServiceError` saying why not."""
    if len(prefix) < MIN_PREFIX:
        raise ServiceError(f"give at least {MIN_PREFIX} characters of a dead letter's id")
    found = select(letters, ids=[prefix], now=now)
    if not found:
        raise ServiceError(f"there is no dead letter {printable(prefix)!r}")
    if len(found) > 1:
        raise ServiceError(
            f"{printable(prefix)!r} names {len(found)} dead letters; give more of the id"
        )
    return found[0]


def to_replay(
    letters: list[DeadLetter], ids: Iterable[str], reason: str | None, now: datetime
) -> list[DeadLetter]:
    """The letters `mrwbus dead replay` names (ids, and every one whose reason contains
    `reason`), each once; `ServiceError` if an id names none or several, or a letter does not
    say where it came from."""
    chosen = [one(letters, prefix, now) for prefix in ids]
    if reason is not None:
        chosen += [
            letter for letter in select(letters, reason=reason, now=now) if letter not in chosen
        ]
    for letter in chosen:
        if not letter.exchange and not letter.routing_key:
            raise ServiceError(f"dead letter {letter.id} does not say where it came from")
        if letter.exchange not in REPLAYABLE:
            # The service replays as itself: to the default exchange it could reach any queue
            # (its snapshot, its journal), whatever a planted dead letter says it came from.
            raise ServiceError(
                f"dead letter {printable(letter.id)} came from {printable(letter.source)}; "
                f"only messages of {', '.join(REPLAYABLE)} are replayed"
            )
    return chosen


def select(
    letters: Iterable[DeadLetter],
    *,
    ids: Iterable[str] = (),
    reason: str | None = None,
    since: timedelta | None = None,
    before: timedelta | None = None,
    now: datetime,
) -> list[DeadLetter]:
    """The letters asked for: by id prefix, by a reason containing `reason` (any case), by
    age. A letter with no time is never older or newer than anything: age filters skip it."""
    wanted = [prefix.lower() for prefix in ids]
    found = []
    for letter in letters:
        if wanted and not any(letter.id.lower().startswith(prefix) for prefix in wanted):
            continue
        if reason is not None and reason.lower() not in letter.reason.lower():
            continue
        if since is not None and (letter.at is None or letter.at < now - since):
            continue
        if before is not None and (letter.at is None or letter.at >= now - before):
            continue
        found.append(letter)
    return found


def group_by_reason(letters: Iterable[DeadLetter]) -> dict[str, list[DeadLetter]]:
    """Letters by reason, the most frequent reason first, each group in queue order."""
    groups: dict[str, list[DeadLetter]] = {}
    for letter in letters:
        groups.setdefault(letter.reason, []).append(letter)
    return dict(sorted(groups.items(), key=lambda item: -len(item[1])))


def render_list(letters: list[DeadLetter]) -> str:
    """For a terminal: what came off the bus is escaped (`terminal.printable`)."""
    if not letters:
        return "No dead letters."
    groups = group_by_reason(letters)
    lines = [f"{len(letters)} dead letters, {len(groups)} reasons"]
    for reason, members in groups.items():
        lines += ["", f"{printable(reason)} ({len(members)})"]
        for letter in members:
            when = f"{letter.at:%Y-%m-%d %H:%M:%S}" if letter.at else "-" * 19
            lines.append(
                f"  {printable(letter.id[:SHORT_ID]):<{SHORT_ID}}  {when}"
                f"  {printable(letter.source):<34}  {letter.preview()}"
            )
    return "\n".join(lines)


def render_show(letter: DeadLetter) -> str:
    """For a terminal: every field and each line of the body escaped (`terminal.printable`)."""
    source = letter.source + (f" (queue {letter.queue})" if letter.queue else "")
    lines = [
        f"id:          {printable(letter.id)}",
        f"reason:      {printable(letter.reason)}",
        f"from:        {printable(source)}",
        f"at (UTC):    {letter.at:%Y-%m-%d %H:%M:%S}" if letter.at else "at (UTC):    unknown",
        f"message id:  {printable(letter.message_id or '-')}",
        f"body bytes:  {len(letter.body)}",
        "headers:",
        *(
            f"  {printable(key)}: {printable(_text(value))}"
            for key, value in sorted(letter.headers.items())
        ),
        "body:",
        *(printable(line) for line in _pretty(letter.body).split("\n")),
    ]
    return "\n".join(lines)


def _pretty(body: bytes) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except (ValueError, UnicodeDecodeError):
        return body.decode("utf-8", errors="replace")


def in_time_order(letters: Iterable[DeadLetter]) -> list[DeadLetter]:
    """Oldest first, letters of unknown time last, ties in the order given.

    The queue's own order does not survive a look: RabbitMQ 3.10 returns held messages to a
    quorum queue in no particular order (100 held and returned came back shuffled, here). So
    mrwbus lists and replays by the time of dead-lettering, never by queue position."""
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(letters, key=lambda letter: letter.at or far)


def _parse_time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(_text(value)) if value else None
    except ValueError:
        return None


def _first_death(headers: Mapping[str, Any]) -> Mapping[str, Any] | None:
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], Mapping):
        return deaths[0]
    return None


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _aware(value: object) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _derived_id(body: bytes, message_id: str | None, headers: Mapping[str, Any]) -> str:
    # A broker dead letter has no id of its own: one made from what it is and when it died.
    death = _first_death(headers) or {}
    digest = hashlib.sha256()
    for part in (message_id or "", _text(death.get("time", "")), _text(death.get("queue", ""))):
        digest.update(part.encode() + b"\x1f")
    digest.update(body)
    return "b" + digest.hexdigest()[:31]
