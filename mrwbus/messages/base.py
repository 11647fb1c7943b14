"""The wire contract's vocabulary: categories, actions, names, ids, times and `WireModel`,
the base of every message (unknown fields refused, frozen)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
)

MAX_BODY_BYTES = 64 * 1024
"""Larger message bodies are refused before they are parsed."""

MAX_REPLY_BYTES = 64 * 1024 * 1024
"""A control reply comes from the service itself and lists every monitor on every server: a
status of 10,000 monitors is megabytes, not kilobytes."""

KEYWORD_MAX_BYTES = 1023
CATEGORY_MAX_BYTES = 32


class Category(StrEnum):
    """The fault categories the server management infrastructure sends."""

    NIC = "NIC"
    FC = "FC"
    HA_SS = "HA/SS"
    HA_AM = "HA/AM"
    HA_RS = "HA/RS"
    SPS = "SPS"

    @property
    def routing_key(self) -> str:
        """The routing-key word for this category: `HA/SS` -> `ha-ss`."""
        return self.value.lower().replace("/", "-")

    @classmethod
    def from_routing_key(cls, word: str) -> Category:
        for category in cls:
            if category.routing_key == word:
                return category
        raise ValueError(f"unknown category key {word!r}")


class Action(StrEnum):
    """What a monitor does on error; also the last word of a command's routing key."""

    SCRIPT = "script"
    RESTART = "restart"
    FAILOVER = "failover"
    FINAL_ACTION = "final_action"
    FENCE = "fence"
    """Not a monitor's choice: a peer's agent drives another server's BMC (docs/fencing.md)."""


class FinalAction(StrEnum):
    """What to do when the recovery ladder is exhausted or the final action was chosen."""

    NONE = "none"
    STOP_GROUP = "stop_group"
    STOP_CLUSTER_SERVICE = "stop_cluster_service"
    SHUTDOWN = "shutdown"
    REBOOT = "reboot"
    SYSRQ_PANIC = "sysrq_panic"
    KEEPALIVE_RESET = "keepalive_reset"
    KEEPALIVE_PANIC = "keepalive_panic"
    BMC_RESET = "bmc_reset"
    BMC_POWER_OFF = "bmc_power_off"
    BMC_POWER_CYCLE = "bmc_power_cycle"
    BMC_NMI = "bmc_nmi"

    @property
    def takes_server_down(self) -> bool:
        """True when the action removes the whole server from the cluster."""
        return self not in (FinalAction.NONE, FinalAction.STOP_GROUP)

    @property
    def fence_action(self) -> FenceAction | None:
        """What a peer asks the server's BMC for, when this final action goes through it."""
        return _BMC_FENCE_ACTIONS.get(self)


class FenceAction(StrEnum):
    """What a fence agent is asked to do to a server's power (its `action=` line)."""

    OFF = "off"
    ON = "on"
    REBOOT = "reboot"
    STATUS = "status"
    DIAG = "diag"

    @property
    def proves_stopped(self) -> bool:
        """Whether a verified success means nothing that ran on the server runs any more."""
        return self in (FenceAction.OFF, FenceAction.REBOOT, FenceAction.DIAG)

    @property
    def expected_power(self) -> PowerState | None:
        """The power state read back after success (a reboot and an NMI leave it on)."""
        return {
            FenceAction.OFF: PowerState.OFF,
            FenceAction.ON: PowerState.ON,
            FenceAction.REBOOT: PowerState.ON,
        }.get(self)


class PowerState(StrEnum):
    """A server's power as its BMC reports it (`action=status`)."""

    ON = "on"
    OFF = "off"


_BMC_FENCE_ACTIONS = {
    FinalAction.BMC_POWER_OFF: FenceAction.OFF,
    FinalAction.BMC_RESET: FenceAction.REBOOT,
    FinalAction.BMC_POWER_CYCLE: FenceAction.REBOOT,
    FinalAction.BMC_NMI: FenceAction.DIAG,
}


def _max_utf8_bytes(limit: int) -> AfterValidator:
    def check(value: str) -> str:
        size = len(value.encode("utf-8"))
        if size > limit:
            raise ValueError(f"is {size} bytes, at most {limit} allowed")
        return value

    return AfterValidator(check)


def _rfc3339_text(value: object) -> object:
    # pydantic would read a bare number as a Unix time; the contract says RFC 3339 text.
    if isinstance(value, int | float):
        raise ValueError("must be an RFC 3339 time such as 2026-11-25T15:50:14Z, not a number")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]
"""An RFC 3339 time with its offset."""

NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
"""Server, group, resource and monitor names: they become routing-key words."""

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Keyword = Annotated[str, _max_utf8_bytes(KEYWORD_MAX_BYTES)]
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=200)]


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


_ID_NAMESPACE = uuid.UUID("7a3c4e8e-5b1d-4c55-9a07-0d7f2b0c6e11")


_ID_PREFIX = hashlib.sha1(_ID_NAMESPACE.bytes)


def derived_id(*parts: str) -> str:
    """A deterministic id: the same fault and step always give the same command id.

    `uuid.uuid5(_ID_NAMESPACE, name)`, computed without building UUID objects (a first fault
    derives several ids, and uuid5 was a twentieth of its cost)."""
    digest = _ID_PREFIX.copy()
    digest.update("\x1f".join(parts).encode())
    raw = bytearray(digest.digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class WireModel(BaseModel):
    """Base of every message: unknown fields are refused, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_body(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode("utf-8")


M = TypeVar("M", bound=WireModel)
