"""Who may send what to the service: the service's refusal policy for verified senders
(docs/security.md; who a message speaks for is `bus.identity`).

The checks are pure: a parsed message, the AMQP `user_id` it came with (which the broker
verified), and the configuration in; a refusal (one sentence) or None out. The service dead-letters a refused
message with that sentence and raises an event (MRW-901, MRW-902); it never causes a command.

A message the service republished itself (`mrwbus dead replay`) carries the `user_id` of the
service and, in `SENDER_HEADER`, who sent the original: it is judged as if that user had sent it,
so a replay launders nothing. Only the service's own `user_id` makes the header believable: any
other publisher may write whatever headers it likes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mrwbus.bus.identity import UNKNOWN_SENDER, describe_sender
from mrwbus.bus.roles import OPERATOR, VIEWER, VIEWER_VERBS, agent_user, relay_user
from mrwbus.core import events
from mrwbus.messages import (
    AgentReport,
    CommandResult,
    ControlRequest,
    ControlVerb,
    Event,
    FaultNotification,
    new_id,
    utc_now,
)

if TYPE_CHECKING:
    from aio_pika.abc import AbstractIncomingMessage

    from mrwbus.config.model import ClusterConfig

VERBS_OF: dict[str, frozenset[ControlVerb]] = {
    OPERATOR: frozenset(ControlVerb),
    VIEWER: frozenset(VIEWER_VERBS),
}
"""The control verbs each user may send; everybody else may send none."""


def fault_refusal(
    fault: FaultNotification, sender: str | None, config: ClusterConfig
) -> str | None:
    """Why the service must not take `fault`: only `relay-<its server>` reports its faults."""
    expected = relay_user(fault.server)
    if not config.security.verify_senders or sender == expected:
        return None
    return f"a fault for {fault.server!r} sent by {describe_sender(sender)}, not by {expected!r}"


def agent_message_refusal(
    message: CommandResult | AgentReport, sender: str | None, config: ClusterConfig
) -> str | None:
    """Why the service must not take a result or report: only `agent-<its server>` sends them
    (the routing key and the body name the same server: `messages.parse_agent_message`)."""
    expected = agent_user(message.server)
    if not config.security.verify_senders or sender == expected:
        return None
    noun = "result" if isinstance(message, CommandResult) else "report"
    return f"a {noun} for {message.server!r} sent by {describe_sender(sender)}, not by {expected!r}"


def control_refusal(
    request: ControlRequest, routing_key: str, sender: str | None, config: ClusterConfig
) -> str | None:
    """Why the service must not carry out a control request: its routing key is not its verb
    (the broker's topic permissions judged the key), or its sender may not use that verb."""
    if not config.security.verify_senders:
        return None
    if routing_key != request.verb.value:
        return f"routing key {routing_key!r} is not the request's verb {request.verb.value!r}"
    allowed = VERBS_OF.get(sender or "", frozenset())
    if request.verb in allowed:
        return None
    return f"{request.verb.value} is not allowed to {describe_sender(sender)}"


def named(request: ControlRequest, sender: str | None, config: ClusterConfig) -> ControlRequest:
    """The request with `by` naming the verified user (and who the tool said asked)."""
    if not config.security.verify_senders or not sender:
        return request
    by = sender if request.by in (sender, "") else f"{sender} ({request.by})"
    return request.model_copy(update={"by": by[:200]})


_NOUNS = {"FaultNotification": "fault", "CommandResult": "result", "AgentReport": "report"}


def refused(
    message: AbstractIncomingMessage,
    about: FaultNotification | CommandResult | AgentReport,
    sender: str | None,
    reason: str,
) -> Event:
    """MRW-901: a fault, result or report refused for its sender."""
    noun = _NOUNS[type(about).__name__]
    return events.SENDER_REFUSED.make(
        at=utc_now(),
        cause=message.message_id or new_id(),
        server=about.server,
        noun=noun,
        reason=reason,
        sender=sender or UNKNOWN_SENDER,
    )


def refused_control(request: ControlRequest, sender: str | None, reason: str) -> Event:
    """MRW-902: a control request refused."""
    return events.CONTROL_REFUSED.make(
        at=utc_now(),
        cause=request.id,
        verb=request.verb.value,
        by=sender or request.by,
        reason=reason,
        sender=sender or UNKNOWN_SENDER,
    )


def refusal(
    found: FaultNotification | CommandResult | AgentReport | ControlRequest,
    routing_key: str,
    sender: str | None,
    config: ClusterConfig,
) -> str | None:
    """Why the service must not take `found` from `sender`, whatever kind of input it is."""
    if isinstance(found, ControlRequest):
        return control_refusal(found, routing_key, sender, config)
    if isinstance(found, FaultNotification):
        return fault_refusal(found, sender, config)
    return agent_message_refusal(found, sender, config)


def refusal_event(
    message: AbstractIncomingMessage,
    found: FaultNotification | CommandResult | AgentReport | ControlRequest,
    sender: str | None,
    reason: str,
) -> Event:
    """MRW-901 or MRW-902: the refusal of `found`, for the event log."""
    if isinstance(found, ControlRequest):
        return refused_control(found, sender, reason)
    return refused(message, found, sender, reason)
