"""Shared fixtures of the unit tests: a small, realistic cluster and a fault factory.

The cluster: three servers in two server groups (server1 and server2 at site-a, server3 at
site-b), two failover groups, and one monitor for each of the six message categories, between
them using every recovery action. And the bus as the service reads it, with a stalled agent.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from mrwbus.config.loading import parse_config
from mrwbus.config.model import ClusterConfig
from mrwbus.core.cluster import ClusterState
from mrwbus.messages import Category, FaultNotification
from mrwbus.messages.bus import BusReport, QueueDepth, RecentDeadLetter

CLUSTER_YAML = """\
servers:
  server1:
    server_group: site-a
  server2:
    server_group: site-a
  server3:
    server_group: site-b

groups:
  web:                                  # starts on server1
    servers: [server1, server2, server3]
    resources: [web-ip, web-app]
  db:                                   # starts on server2
    servers: [server2, server3, server1]
    resources: [db-disk]

monitors:
  mrw1:             # public LAN of web; server2 cables it to eth1; server3 is not watched
    category: NIC
    keyword: eth0
    servers:
      server1: {}
      server2: {keyword: eth1}
    recovery:
      action: restart
      target: web
      max_restarts: 2
      final_action: shutdown
      reset_counts_after: 10m
  mrw2:             # FC paths of db on any HBA: fail over to the other site, once
    category: FC
    recovery:
      action: failover
      target: db
      outside_server_group: true
      max_failovers: 1
      final_action: stop_group
      before_script: /opt/collect-fc-logs.sh
      clear_on_recovery: true
  mrw3:             # every storage path lost: reboot the server at once
    category: HA/SS
    keyword: sdb
    recovery:
      action: final_action
      target: all_groups
      final_action: reboot
  mrw4:             # the web application misbehaves: run a script
    category: HA/AM
    keyword: app
    recovery:
      action: script
      target: web-app
      script: /opt/fix-app.sh
  mrw5:             # storage path of web, only while web-ip runs on the server
    category: SPS
    timing:
      active: web-ip
    recovery:
      action: failover
      target: web
      max_failovers: 2
      final_action: none
      reset_counts_after: 90s
  mrw6:             # resources exhausted: stop every group on the server
    category: HA/RS
    recovery:
      action: restart
      target: all_groups
      max_restarts: 0
      final_action: stop_group
"""

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

FaultFactory = Callable[..., FaultNotification]


@pytest.fixture(scope="session")
def config() -> ClusterConfig:
    """The example cluster; frozen, so one instance serves the whole session."""
    return parse_config(CLUSTER_YAML, "cluster.yaml")


@pytest.fixture
def cluster(config: ClusterConfig) -> ClusterState:
    """A fresh cluster state: web on server1, db on server2, every monitor Normal."""
    return ClusterState.initial(config)


@pytest.fixture(scope="session")
def t0() -> datetime:
    return T0


@pytest.fixture(scope="session")
def cluster_yaml() -> str:
    return CLUSTER_YAML


@pytest.fixture(scope="session")
def make_fault() -> FaultFactory:
    """`make_fault(server, category, device, id=..., state=..., at=...)`: a fault notification.

    Without `id`, each call gets a fresh one, so two faults are two notifications.
    """
    numbers = itertools.count(1)

    def make(
        server: str,
        category: Category | str,
        device: str,
        *,
        id: str | None = None,
        state: str = "error",
        at: datetime | None = None,
        message: str = "",
    ) -> FaultNotification:
        return FaultNotification(
            id=id or f"fault-{next(numbers)}",
            server=server,
            category=Category(category),
            device=device,
            message=message,
            occurred_at=at or T0,
            state=state,  # type: ignore[arg-type]
        )

    return make


@pytest.fixture(scope="session")
def bus_report() -> BusReport:
    """Faults being decided, server1's agent queue growing unconsumed, 4 dead letters."""
    at = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)
    return BusReport(
        read_at=at,
        queues=[
            QueueDepth(queue="mrwbus.faults", role="faults", ready=7, unacked=2, consumers=1),
            QueueDepth(
                queue="mrwbus.agent.server1",
                role="agent",
                server="server1",
                ready=3,
                consumers=0,
                stalled=True,
                oldest_age_seconds=12.5,
            ),
            QueueDepth(queue="mrwbus.dead", role="dead", ready=4, consumers=0),
        ],
        dead_letters=4,
        recent_dead_letters=[
            RecentDeadLetter(
                at=at,
                reason="body is not JSON",
                exchange="mrwbus.faults",
                routing_key="server1.nic",
            )
        ],
        source="management",
    )
