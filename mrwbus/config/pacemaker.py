"""The `agent.pacemaker` section: Pacemaker carries out the agents' commands (docs/pacemaker.md).

```yaml
agent:
  backend: pacemaker
  pacemaker:
    resources: {app: grp-app}     # mrwbus group or group resource -> Pacemaker id (default: same)
    nodes: {db1: pcmk-db1}        # mrwbus server -> Pacemaker node name (default: same)
    settle_timeout: 60s           # how long an operation may take to show in crm_mon
```
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from mrwbus.config.durations import Duration
from mrwbus.messages import FinalAction, Name

PACEMAKER_HANDLERS = (
    "restart",
    "failover.stop",
    "failover.start",
    "final_action.stop_group",
    "final_action.stop_cluster_service",
    *(f"final_action.{action.value}" for action in FinalAction if action.fence_action is not None),
)
"""The handlers the Pacemaker backend is: `agent.handlers` may not name them too."""

PacemakerId = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")
]
"""A Pacemaker resource id or node name: an XML id, never an option (no leading `-`)."""


class PacemakerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    resources: dict[Name, PacemakerId] = Field(default_factory=dict)
    """mrwbus group (or group resource) -> the Pacemaker resource or group; default: same name."""
    nodes: dict[Name, PacemakerId] = Field(default_factory=dict)
    """mrwbus server -> its Pacemaker node name; default: same name."""
    settle_timeout: Duration = timedelta(seconds=60)
    """How long a move, restart, stop, standby or fence may take before it counts as failed."""
    poll_interval: Duration = timedelta(seconds=0.2)
    """How often crm_mon is read while an operation settles."""

    def resource_id(self, name: str) -> str:
        return self.resources.get(name, name)

    def node_name(self, server: str) -> str:
        return self.nodes.get(server, server)

    def server_of(self, node: str) -> str:
        """The mrwbus server of a Pacemaker node (the node's own name when none maps to it)."""
        return next((server for server, name in self.nodes.items() if name == node), node)
