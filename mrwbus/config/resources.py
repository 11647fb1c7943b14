"""The `resources:` section of the cluster YAML: group resources run by OCF resource agents.

```yaml
groups:
  pg: {servers: [db1, db2], resources: [vip, data, postgres]}   # started in this order
resources:
  vip:
    ocf: heartbeat:IPaddr2
    params: {ip: 192.0.2.50, cidr_netmask: 24}
    servers: {db2: {params: {nic: eth1}}}        # per-server parameters, over the common ones
  postgres:
    ocf: heartbeat:pgsql
    params: {pgdata: /srv/pg/data}
    timeouts: {start: 60s, stop: 60s, monitor: 20s}
```

The shapes are checked here (pydantic) and the names by `config.checks`, called from
`config_checks`. The parameters are checked against each agent's own `meta-data` where the
agents are installed: by `mrwbus check-config` and by the agent at its start
(`ocf.agents.check_agents`), never by the service, which needs no agent installed.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from mrwbus.messages import Name
from mrwbus.ocf.contract import PARAM_PATTERN, AgentName


def _duration(value: Any) -> timedelta:
    # Imported here: mrwbus.config.model imports this module to build `ClusterConfig`.
    from mrwbus.config.durations import parse_duration

    return parse_duration(value)


def _scalar(value: Any) -> Any:
    if not isinstance(value, str | int | float | bool):
        raise ValueError("must be a string, a number or a boolean")
    return value


def _agent_name(value: str) -> str:
    return str(AgentName.parse(value))  # `ocf:heartbeat:X` is kept as `heartbeat:X`


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def _param_name(value: str) -> str:
    if not re.fullmatch(PARAM_PATTERN, value):
        raise ValueError(
            f"{value!r} is not a parameter name (letters, digits and _, as in OCF_RESKEY_<name>)"
        )
    return value


ParamName = Annotated[str, AfterValidator(_param_name)]
ParamValue = Annotated[str | int | float | bool, BeforeValidator(_scalar)]
Params = dict[ParamName, ParamValue]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResourceTimeouts(_Strict):
    """Per-action timeouts; an action left out takes the agent's advised timeout from its
    meta-data, else `DEFAULT_TIMEOUT`."""

    start: Duration | None = None
    stop: Duration | None = None
    monitor: Duration | None = None


DEFAULT_TIMEOUT = timedelta(seconds=20)
"""The timeout of an action that neither the configuration nor the agent's meta-data sets
(Pacemaker's default operation timeout)."""


class ResourceServerConfig(_Strict):
    """One server's own parameters (the console's per-server tab)."""

    params: Params = Field(default_factory=dict)


class ResourceConfig(_Strict):
    """A group resource run by an OCF resource agent."""

    ocf: Annotated[str, AfterValidator(_agent_name)]
    """The agent, `provider:type`: `heartbeat:IPaddr2`, `pacemaker:Dummy`."""
    params: Params = Field(default_factory=dict)
    timeouts: ResourceTimeouts = ResourceTimeouts()
    servers: dict[Name, ResourceServerConfig | None] = Field(default_factory=dict)

    @property
    def agent(self) -> AgentName:
        return AgentName.parse(self.ocf)

    def params_on(self, server: str) -> dict[str, str | int | float | bool]:
        """The parameters on `server`: the common ones, replaced by the server's own."""
        own = self.servers.get(server)
        return {**self.params, **(own.params if own is not None else {})}


OCF_HANDLERS = ("restart", "failover.start", "failover.stop", "final_action.stop_group")
"""The agent handlers the OCF resources of a group carry out (`mrwbus.agent.ocf`)."""
