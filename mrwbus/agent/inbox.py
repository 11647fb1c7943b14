"""What arrives in an agent's queue, validated: recovery commands and report requests."""

from __future__ import annotations

from pydantic import TypeAdapter, ValidationError

from mrwbus.errors import ContractError
from mrwbus.messages import (
    REPORT_REQUEST_WORD,
    MessageId,
    RecoveryCommand,
    json_object,
    parse_message,
)

_MESSAGE_ID: TypeAdapter[str] = TypeAdapter(MessageId)


def is_report_request(routing_key: str, server: str) -> bool:
    return routing_key == f"{server}.{REPORT_REQUEST_WORD}"


def parse_command(body: bytes, routing_key: str, server: str) -> RecoveryCommand:
    """Validate a command off the agent's queue, or raise `ContractError` saying what is wrong.

    The routing key must be `<this server>.<the body's action>`. A body naming another server
    passes: the agent refuses it with a result, which tells the service more than silence.
    """
    command = parse_message(RecoveryCommand, body)
    expected = f"{server}.{command.action.value}"
    if routing_key != expected:
        raise ContractError(
            f"routing key {routing_key!r} does not match the body, which asks for {expected!r}"
        )
    return command


def salvage_id(body: bytes) -> str | None:
    """The `id` of a body that is not a valid command, when it has a usable one."""
    try:
        data = json_object(body)
        return _MESSAGE_ID.validate_python(data.get("id"))
    except (ContractError, ValidationError):
        return None
