"""Which Pacemaker operation carries out a recovery command: pure, no I/O.

| command | operation |
| --- | --- |
| `failover`, step `stop` (source's agent) | MOVE the group to the destination's node: done once crm_mon shows it running wholly there |
| `failover`, step `start` (destination's agent) | ARRIVE: confirm it runs on this node; a move here only if it runs nowhere |
| `restart` | RESTART the group (or the group resource) |
| `final_action.stop_group` | STOP: target-role Stopped |
| `final_action.stop_cluster_service` | STANDBY: this node |
| `final_action.bmc_power_off` / `bmc_reset`, `bmc_power_cycle` | FENCE this node: off / reboot |
| `fence` (a peer fences `target`) | FENCE the target's node: off / reboot |

The other commands (`script`, `before_script`, `shutdown`, `reboot`, `sysrq_panic`, the
`keepalive_*`) stay with the agent's own handlers; `bmc_nmi` and the fence actions `on`,
`status` and `diag` have no Pacemaker equivalent and are refused with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mrwbus.config.pacemaker import PacemakerConfig
from mrwbus.messages import Action, FenceAction, FinalAction, RecoveryCommand
from mrwbus.messages.commands import CommandStep


class Kind(StrEnum):
    MOVE = "move"
    ARRIVE = "arrive"
    RESTART = "restart"
    STOP = "stop"
    STANDBY = "standby"
    FENCE = "fence"


class FenceHow(StrEnum):
    """`stonith_admin --fence` (off) or `--reboot`."""

    OFF = "off"
    REBOOT = "reboot"


@dataclass(frozen=True)
class Operation:
    kind: Kind
    resource: str | None = None
    """The Pacemaker resource or group id; None for STANDBY, FENCE, and STOP of every group."""
    node: str | None = None
    """MOVE, ARRIVE: the destination node; STANDBY, FENCE: the node acted on."""
    fence: FenceHow | None = None
    group: str | None = None
    """The mrwbus group, for the result's words."""


class NotPacemakers(ValueError):
    """The command is not one Pacemaker carries out (its text says why), or it cannot be."""


FINAL_FENCES = {
    FinalAction.BMC_POWER_OFF: FenceHow.OFF,
    FinalAction.BMC_RESET: FenceHow.REBOOT,
    FinalAction.BMC_POWER_CYCLE: FenceHow.REBOOT,
}
COMMAND_FENCES = {FenceAction.OFF: FenceHow.OFF, FenceAction.REBOOT: FenceHow.REBOOT}


def operation_for(command: RecoveryCommand, config: PacemakerConfig, server: str) -> Operation:
    """The Pacemaker operation for `command`, run by `server`'s agent. Raises `NotPacemakers`."""
    here = config.node_name(server)
    named = command.resource or command.group
    unit = config.resource_id(named) if named else None
    match command.action:
        case Action.FAILOVER:
            if command.group is None:
                raise NotPacemakers("a failover names its group")
            group = config.resource_id(command.group)
            if command.step is CommandStep.STOP:
                if command.to_server is None:
                    raise NotPacemakers(
                        "a failover stop without a destination: Pacemaker moves, it does not only stop"
                    )
                destination = config.node_name(command.to_server)
                return Operation(Kind.MOVE, group, destination, group=command.group)
            return Operation(Kind.ARRIVE, group, here, group=command.group)
        case Action.RESTART:
            if unit is None:
                raise NotPacemakers("a restart names its group or resource")
            return Operation(Kind.RESTART, unit, here, group=command.group)
        case Action.FINAL_ACTION:
            final = command.final_action
            if final is FinalAction.STOP_GROUP:
                stopped = config.resource_id(command.group) if command.group else None
                return Operation(Kind.STOP, stopped, here, group=command.group)
            if final is FinalAction.STOP_CLUSTER_SERVICE:
                return Operation(Kind.STANDBY, node=here)
            if final in FINAL_FENCES:
                return Operation(Kind.FENCE, node=here, fence=FINAL_FENCES[final])
            if final is FinalAction.BMC_NMI:
                raise NotPacemakers(
                    "Pacemaker's fencer has no NMI (diag) action: bmc_nmi needs a handler of its own"
                )
        case Action.FENCE:
            if command.target is None or command.fence_action not in COMMAND_FENCES:
                action = command.fence_action.value if command.fence_action else "none"
                raise NotPacemakers(f"Pacemaker's fencer does off and reboot, not {action}")
            return Operation(
                Kind.FENCE,
                node=config.node_name(command.target),
                fence=COMMAND_FENCES[command.fence_action],
            )
    raise NotPacemakers(f"{command.action.value} is not carried out by Pacemaker")


def move_constraint_id(resource: str) -> str:
    """mrwbus's own location constraint for a move of `resource`: one per resource, so a
    second move of it writes the same element, and clearing it never touches a person's."""
    return f"mrwbus-move-{resource}"


def move_constraint_xml(resource: str, node: str) -> str:
    return (
        f'<rsc_location id="{move_constraint_id(resource)}" rsc="{resource}"'
        f' node="{node}" score="INFINITY"/>'
    )
