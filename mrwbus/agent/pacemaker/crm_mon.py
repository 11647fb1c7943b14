"""Pacemaker's truth as values: `crm_mon --output-as=xml` and the CIB's constraints, parsed.

Pure: text in, frozen values out, no I/O. The backend asks these values where a group runs,
whether Pacemaker is still acting, and why a move did not happen (`refusal_reason`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable
from dataclasses import dataclass

from mrwbus.errors import ContractError

ACTIVE_ROLES = frozenset({"Started", "Promoted", "Unpromoted", "Master", "Slave"})
"""The roles of a resource that runs (Pacemaker 2.1 names, and the older ones)."""


@dataclass(frozen=True)
class Node:
    name: str
    online: bool
    standby: bool
    maintenance: bool
    unclean: bool
    shutdown: bool

    @property
    def eligible(self) -> bool:
        """Whether Pacemaker could start a resource here now."""
        return self.online and not (
            self.standby or self.maintenance or self.unclean or self.shutdown
        )

    def why_not(self) -> str:
        if not self.online:
            return f"node {self.name} is offline"
        for flag in ("standby", "maintenance", "unclean", "shutdown"):
            if getattr(self, flag):
                return (
                    f"node {self.name} is in {flag}"
                    if flag != "shutdown"
                    else f"node {self.name} is shutting down"
                )
        return ""


@dataclass(frozen=True)
class Resource:
    """One primitive as crm_mon shows it."""

    id: str
    role: str
    active: bool
    failed: bool
    managed: bool
    nodes: tuple[str, ...]
    target_role: str | None = None

    @property
    def running_on(self) -> tuple[str, ...]:
        return self.nodes if self.active and self.role in ACTIVE_ROLES else ()


@dataclass(frozen=True)
class Unit:
    """What mrwbus maps a group to: a Pacemaker group (its members) or one primitive."""

    id: str
    members: tuple[Resource, ...]
    target_role: str | None = None

    @property
    def nodes(self) -> frozenset[str]:
        """Every node where some member runs (or is failed but there)."""
        return frozenset(node for member in self.members for node in member.nodes)

    def runs_wholly_on(self, node: str) -> bool:
        """Every member started on `node`, and on no other node: "moved" means this."""
        return bool(self.members) and all(m.running_on == (node,) for m in self.members)

    def stopped(self) -> bool:
        return not self.nodes

    @property
    def unmanaged(self) -> bool:
        return any(not member.managed for member in self.members)


@dataclass(frozen=True)
class FailedAction:
    """A failed operation Pacemaker recorded (and recovers by its own rules)."""

    resource: str
    node: str
    task: str
    exit_status: str
    exit_reason: str
    call: str
    at: str

    def describe(self) -> str:
        reason = f": {self.exit_reason}" if self.exit_reason else ""
        return f"{self.resource} {self.task} on {self.node} failed ({self.exit_status}{reason}) at {self.at}"


@dataclass(frozen=True)
class ClusterStatus:
    dc: str | None
    nodes: dict[str, Node]
    units: dict[str, Unit]
    failures: tuple[FailedAction, ...]

    def unit(self, resource_id: str) -> Unit | None:
        """A group or a primitive by id (a primitive inside a group too)."""
        if resource_id in self.units:
            return self.units[resource_id]
        for unit in self.units.values():
            for member in unit.members:
                if member.id == resource_id:
                    return Unit(member.id, (member,), member.target_role)
        return None

    def failures_of(self, unit: Unit) -> list[FailedAction]:
        ids = {unit.id} | {member.id for member in unit.members}
        return [failure for failure in self.failures if failure.resource in ids]


def parse_crm_mon(text: str) -> ClusterStatus:
    """`crm_mon -1 --output-as=xml` -> `ClusterStatus`. Raises `ContractError` on anything else."""
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise ContractError(f"crm_mon printed no XML: {exc}") from None
    if root.tag != "pacemaker-result":
        raise ContractError(f"crm_mon printed <{root.tag}>, not <pacemaker-result>")
    dc_element = root.find("summary/current_dc")
    dc = (
        dc_element.get("name")
        if dc_element is not None and dc_element.get("present") == "true"
        else None
    )
    nodes = {
        element.get("name", ""): Node(
            name=element.get("name", ""),
            online=_flag(element, "online"),
            standby=_flag(element, "standby"),
            maintenance=_flag(element, "maintenance"),
            unclean=_flag(element, "unclean"),
            shutdown=_flag(element, "shutdown"),
        )
        for element in root.iterfind("nodes/node")
    }
    units: dict[str, Unit] = {}
    for element in root.iterfind("resources/*"):
        if element.tag == "group":
            members = tuple(_resource(r) for r in element.iterfind("resource"))
            units[element.get("id", "")] = Unit(element.get("id", ""), members, None)
        elif element.tag == "resource":
            resource = _resource(element)
            units[resource.id] = Unit(resource.id, (resource,), resource.target_role)
    failures = tuple(
        FailedAction(
            resource=_op_resource(element.get("op_key", "")),
            node=element.get("node", ""),
            task=element.get("task", ""),
            exit_status=element.get("exitstatus", ""),
            exit_reason=element.get("exitreason", ""),
            call=element.get("call", ""),
            at=element.get("last-rc-change", ""),
        )
        for element in root.iterfind("failures/failure")
    )
    return ClusterStatus(dc, nodes, units, failures)


def _flag(element: ElementTree.Element, name: str) -> bool:
    return element.get(name) == "true"


def _resource(element: ElementTree.Element) -> Resource:
    return Resource(
        id=element.get("id", ""),
        role=element.get("role", ""),
        active=_flag(element, "active"),
        failed=_flag(element, "failed"),
        managed=element.get("managed", "true") == "true",
        nodes=tuple(node.get("name", "") for node in element.iterfind("node")),
        target_role=element.get("target_role"),
    )


def _op_resource(op_key: str) -> str:
    """`d1_monitor_10000` -> `d1` (the id may hold underscores itself)."""
    parts = op_key.rsplit("_", 2)
    return parts[0] if len(parts) == 3 else op_key


# --- why a move was refused -----------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """A `rsc_location` of the CIB: a score for a resource on a node."""

    id: str
    resource: str
    node: str | None
    score: str


def parse_constraints(text: str) -> tuple[Location, ...]:
    """`cibadmin -Q -o constraints` -> its `rsc_location`s with a node (rules are not read)."""
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise ContractError(f"cibadmin printed no XML: {exc}") from None
    return tuple(
        Location(e.get("id", ""), e.get("rsc", ""), e.get("node"), e.get("score", ""))
        for e in root.iter("rsc_location")
    )


def is_minus_infinity(score: str) -> bool:
    return score.strip().lower() in ("-infinity", "-inf")


def refusal_reason(
    status: ClusterStatus,
    unit: Unit | None,
    node: str,
    constraints: Iterable[Location] = (),
    ours: str = "",
) -> str | None:
    """Why Pacemaker will not (or did not) run `unit` on `node`, in its own terms, or None
    when nothing this function knows of stands in the way. `ours` is the id of mrwbus's own
    move constraint, never counted as a reason."""
    if unit is None:
        return "Pacemaker has no such resource"
    target = status.nodes.get(node)
    if target is None:
        return f"Pacemaker has no node {node} (known: {', '.join(sorted(status.nodes))})"
    if not target.eligible:
        return target.why_not()
    ids = {unit.id} | {member.id for member in unit.members}
    for location in constraints:
        if (
            location.id != ours
            and location.resource in ids
            and location.node == node
            and is_minus_infinity(location.score)
        ):
            return (
                f"location constraint {location.id} bans {location.resource} from {node}"
                f" (score {location.score})"
            )
    stopped = unit.target_role or next((m.target_role for m in unit.members if m.target_role), None)
    if stopped is not None and stopped.lower() == "stopped":
        return f"{unit.id} has target-role Stopped"
    if unit.unmanaged:
        return f"{unit.id} is unmanaged"
    failed_there = [f for f in status.failures_of(unit) if f.node == node and f.task == "start"]
    if failed_there:
        return f"Pacemaker will not start it there again: {failed_there[-1].describe()}"
    return None
