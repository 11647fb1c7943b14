"""The OCF resource agent contract, as values: agent names, the environment an agent is run
with, and what its exit codes mean. Pure: no process is started here.

An OCF resource agent is an executable under `$OCF_ROOT/resource.d/<provider>/<type>` that
takes one action as its argument (`start`, `stop`, `monitor`, `meta-data`, ...), reads its
parameters from `OCF_RESKEY_<name>` variables and answers with its exit code:

| code | name | start / stop | monitor |
| --- | --- | --- | --- |
| 0 | OCF_SUCCESS | succeeded | running |
| 1 | OCF_ERR_GENERIC | failed | failed (it is there, broken) |
| 2 | OCF_ERR_ARGS | failed | failed |
| 3 | OCF_ERR_UNIMPLEMENTED | failed | failed |
| 4 | OCF_ERR_PERM | failed | failed |
| 5 | OCF_ERR_INSTALLED | failed | not running (it cannot run here) |
| 6 | OCF_ERR_CONFIGURED | failed | failed |
| 7 | OCF_NOT_RUNNING | start: failed; stop: succeeded | not running |
| 8 | OCF_RUNNING_PROMOTED | failed | running (promoted) |
| 9 | OCF_FAILED_PROMOTED | failed | failed (promoted) |

As Pacemaker does, a stop that finds the resource not running (7) has done its job, and a
monitor that fails (1-4, 6, 9) means the resource is there, broken: it still counts as running
on that server, since starting it elsewhere could run it twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from mrwbus.messages import Outcome

DEFAULT_OCF_ROOT = "/usr/lib/ocf"
"""Where Debian's `resource-agents` and `pacemaker` install the agents; `OCF_ROOT` overrides."""

AGENT_PATTERN = r"^(?:ocf:)?([A-Za-z0-9][A-Za-z0-9_.-]*):([A-Za-z0-9][A-Za-z0-9_.-]*)$"
"""`heartbeat:IPaddr2`, or Pacemaker's full `ocf:heartbeat:IPaddr2`."""

PARAM_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""A parameter name: it becomes part of an environment variable's name."""

EXIT_NAMES = {
    0: "OCF_SUCCESS",
    1: "OCF_ERR_GENERIC",
    2: "OCF_ERR_ARGS",
    3: "OCF_ERR_UNIMPLEMENTED",
    4: "OCF_ERR_PERM",
    5: "OCF_ERR_INSTALLED",
    6: "OCF_ERR_CONFIGURED",
    7: "OCF_NOT_RUNNING",
    8: "OCF_RUNNING_PROMOTED",
    9: "OCF_FAILED_PROMOTED",
}
NOT_RUNNING = 7


class OcfAction(StrEnum):
    START = "start"
    STOP = "stop"
    MONITOR = "monitor"
    META_DATA = "meta-data"


class ResourceState(StrEnum):
    """What a resource's `monitor` says about it on this server."""

    RUNNING = "running"
    NOT_RUNNING = "not running"
    FAILED = "failed"
    UNKNOWN = "unknown"
    """The monitor timed out or could not be run: nothing is known."""

    @property
    def present(self) -> bool | None:
        """Whether the resource is (maybe half) there: True, False, or None (cannot tell)."""
        if self is ResourceState.UNKNOWN:
            return None
        return self is not ResourceState.NOT_RUNNING


@dataclass(frozen=True)
class AgentName:
    """`heartbeat:IPaddr2`: the provider and the type of an OCF resource agent."""

    provider: str
    type: str

    @classmethod
    def parse(cls, text: str) -> AgentName:
        match = re.fullmatch(AGENT_PATTERN, text)
        if match is None:
            raise ValueError(f"{text!r} is not an OCF agent name such as heartbeat:IPaddr2")
        return cls(match.group(1), match.group(2))

    def path(self, ocf_root: str) -> str:
        return f"{ocf_root}/resource.d/{self.provider}/{self.type}"

    def __str__(self) -> str:
        return f"{self.provider}:{self.type}"


def exit_name(code: int | None) -> str:
    """`exit 7 (OCF_NOT_RUNNING)`, `killed by signal 9`, `timed out`."""
    if code is None:
        return "timed out"
    if code < 0:
        return f"killed by signal {-code}"
    name = EXIT_NAMES.get(code)
    return f"exit {code} ({name})" if name else f"exit {code}"


def action_outcome(action: OcfAction, code: int | None) -> Outcome:
    """What a start or stop's exit code (None: it timed out) means for the command."""
    if code is None:
        return Outcome.TIMED_OUT
    if code == 0 or (action is OcfAction.STOP and code == NOT_RUNNING):
        return Outcome.SUCCEEDED
    return Outcome.FAILED


def monitor_state(code: int | None) -> ResourceState:
    """What a monitor's exit code (None: it timed out) says about the resource."""
    if code is None or code < 0:
        return ResourceState.UNKNOWN
    if code in (0, 8):
        return ResourceState.RUNNING
    if code in (NOT_RUNNING, 5):
        return ResourceState.NOT_RUNNING
    return ResourceState.FAILED


def group_present(states: Iterable[ResourceState]) -> bool | None:
    """Whether a group runs on this server, from its resources' monitors: any resource there
    (running or failed) means yes, all of them not running means no, anything else cannot
    tell. A group without resources cannot tell."""
    seen = [state.present for state in states]
    if any(seen):
        return True
    if seen and all(present is False for present in seen):
        return False
    return None


def param_value(value: str | int | float | bool) -> str:
    """A configuration value as the agent reads it: booleans as `true`/`false`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def agent_environment(
    ocf_root: str,
    agent: AgentName,
    instance: str,
    params: Mapping[str, str | int | float | bool],
    timeout: float,
) -> dict[str, str]:
    """The variables an agent is run with, as Pacemaker sets them (OCF 1.1)."""
    variables = {
        "OCF_ROOT": ocf_root,
        "OCF_RA_VERSION_MAJOR": "1",
        "OCF_RA_VERSION_MINOR": "1",
        "OCF_RESOURCE_INSTANCE": instance,
        "OCF_RESOURCE_TYPE": agent.type,
        "OCF_RESOURCE_PROVIDER": agent.provider,
        # Some agents size their own waits by the operation's timeout (milliseconds).
        "OCF_RESKEY_CRM_meta_timeout": str(int(timeout * 1000)),
    }
    for name, value in params.items():
        variables[f"OCF_RESKEY_{name}"] = param_value(value)
    return variables


EXIT_REASON = "ocf-exit-reason:"


def exit_reason(output: str) -> str | None:
    """The last `ocf-exit-reason:` line an agent wrote (`ocf_exit_reason`), without the prefix:
    the agent's own sentence for why it failed."""
    found = None
    for line in output.splitlines():
        if line.startswith(EXIT_REASON):
            found = line.removeprefix(EXIT_REASON).strip()
    return found or None
