"""A two-server PostgreSQL cluster (`db1`, `db2`, group `pg`), as the docs' walk-through has it."""

from __future__ import annotations

from datetime import datetime

from mrwbus.config.loading import parse_config
from mrwbus.config.model import ClusterConfig
from mrwbus.core.cluster import ClusterState
from mrwbus.messages import (
    AgentReport,
    Category,
    CommandResult,
    FaultNotification,
    Outcome,
    RecoveryCommand,
    ReportReason,
)

from ..conftest import T0


def pg_config(sps: str = "", **service: str) -> ClusterConfig:
    """`sps`: more recovery keys of the sps monitor, e.g. `, rearm_after: 2s`."""
    settings = "".join(f"\n  {key}: {value}" for key, value in service.items())
    return parse_config(
        f"""
servers: {{db1: {{}}, db2: {{}}}}
groups:
  pg: {{servers: [db1, db2], resources: [vip, postgres]}}
service:
  heartbeat_timeout: 15s{settings}
monitors:
  sps:
    category: SPS
    recovery: {{action: restart, target: pg, max_restarts: 2, final_action: shutdown, rearm_after: 2s{sps}}}
  nic:
    category: NIC
    keyword: eth0
    recovery: {{action: failover, target: pg}}
  hba2:
    category: FC
    servers: {{db2: null}}
    recovery: {{action: script, target: all_groups, script: note-hba}}
"""
    )


def pg_cluster(sps: str = "", **service: str) -> ClusterState:
    return ClusterState.for_config(pg_config(sps, **service))


def fault(server: str, category: str, device: str, n: int) -> FaultNotification:
    return FaultNotification(
        id=f"fault-{n}", server=server, category=Category(category), device=device, occurred_at=T0
    )


def succeeded(command: RecoveryCommand, outcome: Outcome = Outcome.SUCCEEDED) -> CommandResult:
    return CommandResult(
        id=f"result-{command.id}",
        command_id=command.id,
        server=command.server,
        outcome=outcome,
        finished_at=T0,
    )


def report(
    server: str, *groups: str, probed: tuple[str, ...] = (), at: datetime = T0, n: int = 0
) -> AgentReport:
    return AgentReport(
        id=f"report-{server}-{n}",
        server=server,
        active_groups=list(groups),
        probed_groups=list(probed),
        reason=ReportReason.HEARTBEAT,
        heartbeat_interval=5,
        sent_at=at,
    )
