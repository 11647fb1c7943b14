"""What an OCF agent accepts, from its own `meta-data` XML; and a resource's parameters checked
against it. Pure: the XML text in, values and `ConfigIssue`s out.

The XML (OCF 1.0 and 1.1) lists the agent's parameters, each with `required`, a content type
(`string`, `integer`, `boolean`, or OCF 1.1's `select` with its options) and a default, and its
actions with the timeouts the agent's authors advise.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from mrwbus.errors import ConfigIssue, MetadataError
from mrwbus.ocf.contract import param_value

BOOLEAN_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "y", "n", "1", "0"})
"""The words Pacemaker reads as a boolean (`crm_is_true`), in any case."""

INTEGER = re.compile(r"^[+-]?[0-9]+$")
_TIMEOUT = re.compile(r"^\s*([0-9]+)\s*(ms|s|m|min|h)?\s*$")
_TIMEOUT_UNITS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600}


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str = "string"
    required: bool = False
    default: str | None = None
    options: tuple[str, ...] = ()
    """A `select` parameter's allowed values."""
    shortdesc: str = ""
    unique: bool = False


@dataclass(frozen=True)
class AgentMetadata:
    name: str
    shortdesc: str = ""
    parameters: dict[str, Parameter] = field(default_factory=dict)
    timeouts: dict[str, timedelta] = field(default_factory=dict)
    """Advised timeout per action (`start`, `stop`, `monitor`, ...), where given."""

    @property
    def required(self) -> list[str]:
        return [name for name, spec in self.parameters.items() if spec.required]


def parse_metadata(text: str) -> AgentMetadata:
    """A `<resource-agent>` document -> `AgentMetadata`; `MetadataError` if it is not one."""
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise MetadataError(f"its meta-data is not XML: {exc}") from exc
    if root.tag != "resource-agent":
        raise MetadataError(f"its meta-data is <{root.tag}>, not <resource-agent>")
    parameters: dict[str, Parameter] = {}
    for element in root.iterfind("./parameters/parameter"):
        spec = _parameter(element)
        if spec is not None:
            parameters[spec.name] = spec
    timeouts: dict[str, timedelta] = {}
    for element in root.iterfind("./actions/action"):
        name = element.get("name")
        timeout = _timeout(element.get("timeout"))
        # monitor may be listed once per role (promoted, unpromoted): keep the first.
        if name and timeout is not None and name not in timeouts:
            timeouts[name] = timeout
    return AgentMetadata(
        name=root.get("name", ""),
        shortdesc=_text(root.find("shortdesc")),
        parameters=parameters,
        timeouts=timeouts,
    )


def _parameter(element: ElementTree.Element) -> Parameter | None:
    name = element.get("name")
    if not name:
        return None
    content = element.find("content")
    kind = (content.get("type") if content is not None else None) or "string"
    options = (
        tuple(o.get("value", "") for o in content.iterfind("option")) if content is not None else ()
    )
    return Parameter(
        name=name,
        type=kind,
        required=_flag(element.get("required")),
        default=content.get("default") if content is not None else None,
        options=options,
        shortdesc=_text(element.find("shortdesc")),
        unique=_flag(element.get("unique")),
    )


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes"}


def _text(element: ElementTree.Element | None) -> str:
    return " ".join((element.text or "").split()) if element is not None else ""


def _timeout(value: str | None) -> timedelta | None:
    match = _TIMEOUT.match(value or "")
    if match is None:
        return None
    seconds = int(match.group(1)) * _TIMEOUT_UNITS[match.group(2) or "s"]
    return timedelta(seconds=seconds) if seconds > 0 else None


ParamValue = str | int | float | bool


def check_params(
    metadata: AgentMetadata, agent: str, params: Mapping[str, ParamValue], where: str
) -> Iterator[ConfigIssue]:
    """Each parameter the agent does not know, each required one missing, each value of the
    wrong type; `where` is the key path of the `params` mapping."""
    for name, value in params.items():
        spec = metadata.parameters.get(name)
        if spec is None:
            known = ", ".join(metadata.parameters) or "none"
            yield ConfigIssue(f"{where}.{name}", f"is not a parameter of {agent} (known: {known})")
            continue
        problem = type_problem(spec, value)
        if problem:
            yield ConfigIssue(f"{where}.{name}", problem)
    for name in metadata.required:
        if name not in params:
            yield ConfigIssue(f"{where}.{name}", f"is required by {agent}")


def type_problem(spec: Parameter, value: ParamValue) -> str | None:
    """Why `value` does not fit the parameter's content type, or None when it does."""
    text = param_value(value)
    kind = spec.type.lower()
    if kind == "boolean" and text.lower() not in BOOLEAN_WORDS:
        return f"{text!r} is not a boolean (true or false), as {spec.name} must be"
    if kind == "integer" and (isinstance(value, bool) or not INTEGER.match(text)):
        return f"{text!r} is not an integer, as {spec.name} must be"
    if kind == "select" and spec.options and text not in spec.options:
        return f"{text!r} is not one of: {', '.join(spec.options)}"
    return None


def describe_agent(agent: str, metadata: AgentMetadata) -> str:
    """What an agent accepts, for `mrwbus resource-agents describe`: its parameters (required
    first) with type, default and what each is, and its advised timeouts."""
    lines = [f"{agent}: {metadata.shortdesc}" if metadata.shortdesc else agent, "", "parameters:"]
    ordered = sorted(metadata.parameters.values(), key=lambda spec: not spec.required)
    for spec in ordered:
        kind = spec.type + (f" ({', '.join(spec.options)})" if spec.options else "")
        facts = ["required" if spec.required else "optional", kind]
        if spec.default not in (None, ""):
            facts.append(f"default {spec.default}")
        if spec.unique:
            facts.append("unique")
        lines.append(f"  {spec.name}: {', '.join(facts)}")
        if spec.shortdesc:
            lines.append(f"      {spec.shortdesc}")
    if not metadata.parameters:
        lines.append("  (none)")
    if metadata.timeouts:
        lines += ["", "advised timeouts:"]
        lines += [f"  {name}: {_seconds(value)}" for name, value in metadata.timeouts.items()]
    return "\n".join(lines)


def _seconds(value: timedelta) -> str:
    return f"{value.total_seconds():g}s"
