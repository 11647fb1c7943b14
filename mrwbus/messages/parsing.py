"""THE parse of every wire input: a body in, a model out, or a `ContractError` saying why not
(size, nesting, number length, encoding, JSON, schema, routing key)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import (
    ValidationError,
)

from mrwbus.errors import ContractError
from mrwbus.messages.agents import (
    AgentReport,
    CommandResult,
)
from mrwbus.messages.base import (
    MAX_BODY_BYTES,
    M,
)
from mrwbus.messages.commands import (
    FaultNotification,
)
from mrwbus.messages.json_limits import scan


def json_object(body: bytes, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """A message body as a JSON object, or `ContractError` saying why it is not one.

    Whatever the body holds, nothing but `ContractError` comes out: a body nested 50,000
    deep (RecursionError) or a 5,000-digit number (ValueError) would otherwise escape the
    consumer and leave its message unacknowledged, holding a prefetch slot for ever."""
    if len(body) > max_bytes:
        raise ContractError(f"body is {len(body)} bytes, at most {max_bytes} allowed")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContractError(f"body is not valid UTF-8 (byte {exc.start})") from exc
    scan(text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ContractError(
            f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except RecursionError as exc:
        raise ContractError("body is nested too deeply to be read") from exc
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise ContractError(f"body cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise ContractError("body must be a JSON object")
    return data


def parse_message(
    model: type[M],
    body: bytes,
    routing_key: str | None = None,
    *,
    max_bytes: int = MAX_BODY_BYTES,
) -> M:
    """THE parse of every wire input: the body as `model`, or `ContractError` saying why not.

    With `routing_key`, the message's own `routing_key` must equal it. Any problem at all
    (size, encoding, JSON, nesting depth, huge numbers, the schema) is a `ContractError`, so
    every consumer can dead-letter (or refuse) what it cannot read instead of stalling on it.
    """
    data = json_object(body, max_bytes)
    noun = _NOUNS.get(model.__name__, model.__name__)
    try:
        message = model.model_validate(data)
    except ValidationError as exc:
        raise ContractError(
            f"body breaks the {noun} schema: {describe_validation_error(exc)}"
        ) from exc
    except (RecursionError, ValueError, TypeError) as exc:
        raise ContractError(f"body breaks the {noun} schema: {exc}") from exc
    expected = getattr(message, "routing_key", None)
    if routing_key is not None and routing_key != expected:
        raise ContractError(
            f"routing key {routing_key!r} does not match the body, which says {expected!r}"
        )
    return message


_NOUNS = {
    "FaultNotification": "fault",
    "RecoveryCommand": "command",
    "CommandResult": "result",
    "AgentReport": "report",
    "ReportRequest": "report request",
    "ControlRequest": "control request",
}
"""How an error names the schema a body broke."""


def parse_fault(body: bytes, routing_key: str) -> FaultNotification:
    """Validate a fault notification off the wire, or raise `ContractError` saying what is wrong."""
    return parse_message(FaultNotification, body, routing_key)


def describe_validation_error(error: ValidationError) -> str:
    """A one-line summary of pydantic's errors: `device: is 2000 bytes...; id: Field required`."""
    parts = []
    for detail in error.errors()[:5]:
        where = ".".join(str(part) for part in detail["loc"]) or "body"
        parts.append(f"{where}: {detail['msg'].removeprefix('Value error, ')}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def parse_agent_message(body: bytes, routing_key: str) -> CommandResult | AgentReport:
    """Validate a result or report from `mrwbus.results`, or raise `ContractError`."""
    server, _, word = routing_key.partition(".")
    model: type[CommandResult] | type[AgentReport]
    if word == "result":
        model = CommandResult
    elif word == "report":
        model = AgentReport
    else:
        raise ContractError(
            f"routing key {routing_key!r} is neither <server>.result nor <server>.report"
        )
    message = parse_message(model, body)
    if message.server != server:
        raise ContractError(
            f"routing key {routing_key!r} names another server than the body ({message.server!r})"
        )
    return message
