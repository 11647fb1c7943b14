"""The field tables of docs/wire-contract.md, generated from the models in `mrwbus.messages`.

`python -m mrwbus.operators.wire_docs` prints them; a test fails when the document and the models differ,
so the contract relay and agent authors read is the one the code enforces.
"""

from __future__ import annotations

import types
import typing
from enum import Enum

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from mrwbus.core import events
from mrwbus.core.events import EventType
from mrwbus.messages import (
    AgentReport,
    CommandResult,
    ControlReply,
    ControlRequest,
    Event,
    EventBatch,
    FaultNotification,
    RecoveryCommand,
    ReportRequest,
)
from mrwbus.messages.bus import BusReport, DeadLetterNote, QueueDepth, RecentDeadLetter

MESSAGES: tuple[type[BaseModel], ...] = (
    FaultNotification,
    RecoveryCommand,
    CommandResult,
    AgentReport,
    ReportRequest,
    EventBatch,
    Event,
    ControlRequest,
    ControlReply,
)
"""What travels on its own as a message body (each has a JSON Schema, `mrwbus.operators.wire_schema`)."""

DOCUMENTED: tuple[type[BaseModel], ...] = (
    *MESSAGES,
    BusReport,
    QueueDepth,
    RecentDeadLetter,
    DeadLetterNote,
)
"""The messages and the models about the bus nested in them (`StatusReport.bus`,
`ControlRequest.dead_letters`), each with a field table in the contract."""

BEGIN = "<!-- BEGIN GENERATED FIELD TABLES: python -m mrwbus.operators.wire_docs -->"
END = "<!-- END GENERATED FIELD TABLES -->"
EVENTS_BEGIN = "<!-- BEGIN GENERATED EVENT CODES: python -m mrwbus.operators.wire_docs events -->"
EVENTS_END = "<!-- END GENERATED EVENT CODES -->"


def _type_name(annotation: object) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in typing.get_args(annotation))
    if origin is typing.Literal:
        return " \\| ".join(f"`{value}`" for value in typing.get_args(annotation))
    if origin in (list, dict):
        return f"{origin.__name__} of " + ", ".join(
            _type_name(arg) for arg in typing.get_args(annotation)
        )
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " \\| ".join(f"`{member.value}`" for member in annotation)
    if annotation is type(None):
        return "null"
    name = getattr(annotation, "__name__", str(annotation))
    return {
        "str": "string",
        "int": "integer",
        "float": "number",
        "bool": "boolean",
        "datetime": "RFC 3339 time",
        "AwareDatetime": "RFC 3339 time",
    }.get(name, name)


def _row(name: str, field: FieldInfo) -> str:
    required = "yes" if field.is_required() else "no"
    description = (field.description or "").replace("|", "\\|")
    return f"| `{name}` | {_type_name(field.annotation)} | {required} | {description} |"


def render_tables() -> str:
    parts = []
    for model in DOCUMENTED:
        parts.append(f"### `{model.__name__}`\n")
        parts.append("| field | type | required | meaning |")
        parts.append("| --- | --- | --- | --- |")
        parts += [_row(name, field) for name, field in model.model_fields.items()]
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def render_event_codes() -> str:
    """The event catalogue: code, kind and the sentence, with its {facts}."""
    rows = ["| code | kind | text |", "| --- | --- | --- |"]
    for kind in sorted(catalogue(), key=lambda entry: entry.code):
        text = kind.template.replace("|", "\\|")
        rows.append(f"| {kind.code} | `{kind.kind.value}` | {text} |")
    return "\n".join(rows) + "\n"


def catalogue() -> list[EventType]:
    return [value for value in vars(events).values() if isinstance(value, EventType)]


def generated_section(document: str, begin: str = BEGIN, end: str = END) -> str:
    start = document.index(begin) + len(begin)
    return document[start : document.index(end)].strip() + "\n"


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(render_event_codes() if sys.argv[1:] == ["events"] else render_tables(), end="")
