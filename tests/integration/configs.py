"""Cluster configurations several integration tests share."""

from __future__ import annotations


def two_servers_one_nic_monitor(monitor: str = "mrw1") -> str:
    """Two servers, one group, one NIC monitor that restarts it; one broker user (guest) for
    everyone, so senders are not verified."""
    return f"""
security: {{verify_senders: false}}
servers:
  server1: {{}}
  server2: {{}}
groups:
  failover1: {{servers: [server1, server2]}}
monitors:
  {monitor}: {{category: NIC, recovery: {{action: restart, target: failover1}}}}
"""
