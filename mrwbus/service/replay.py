"""`mrwbus dead replay`, carried out by the service: the control verb `replay`.

Operators may not write to `mrwbus.faults` or `mrwbus.commands` (docs/security.md), and a
replay sent with an operator's credentials would be refused by every verified receiver. So the
service replays, as itself, with the original sender named in the message (`senders`):
a replayed fault goes through every check again, as sent by whoever sent it first, and the
decided-faults memory still keeps it from being decided twice.
"""

from __future__ import annotations

from datetime import datetime

from mrwbus.bus.connection import CONNECTION_ERRORS, Urls
from mrwbus.core.decision import Decision
from mrwbus.errors import BrokerUnavailable, ServiceError
from mrwbus.messages import ControlReply, ControlRequest
from mrwbus.messages.bus import DeadLetterNote
from mrwbus.service.answers import Answer, dead_letter_event
from mrwbus.service.dead_letter_queue import held_dead_letters
from mrwbus.service.dead_letters import SHORT_ID, to_replay
from mrwbus.terminal import printable


async def replay_for(url: Urls, request: ControlRequest, now: datetime) -> Answer:
    """Replay the dead letters `request.replay` names; the reply says which, the event who."""
    selection = request.replay
    if selection is None or (not selection.ids and selection.reason is None):
        return _refused(request, "name the dead letters to replay: IDs, or --reason TEXT")
    try:
        async with held_dead_letters(url) as held:
            chosen = to_replay(held.letters, selection.ids, selection.reason, now)
            for letter in chosen:
                await held.replay(letter, request.by)
    except (ServiceError, BrokerUnavailable) as exc:
        return _refused(request, str(exc))
    except CONNECTION_ERRORS as exc:
        return _refused(request, f"the dead letters could not be read: {exc}")
    note = DeadLetterNote(operation="replay", count=len(chosen), selection=_selection(request))
    event = dead_letter_event(request.model_copy(update={"dead_letters": note}), now)
    lines = [
        f"replayed {printable(letter.id[:SHORT_ID])} to {printable(letter.source)}"
        for letter in chosen
    ]
    lines.append(f"{len(chosen)} dead letters replayed.")
    return ControlReply(id=request.id, ok=True, text="\n".join(lines)), Decision(events=(event,))


def _refused(request: ControlRequest, error: str) -> Answer:
    return ControlReply(id=request.id, ok=False, error=error), Decision()


def _selection(request: ControlRequest) -> str:
    assert request.replay is not None
    parts = []
    if request.replay.ids:
        parts.append("ids " + ", ".join(prefix[:SHORT_ID] for prefix in request.replay.ids))
    if request.replay.reason is not None:
        parts.append(f"reason containing {request.replay.reason!r}")
    return "; ".join(parts)[:500]
