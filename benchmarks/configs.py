"""Cluster configurations of any size, written as a user would write them."""

from __future__ import annotations

CATEGORIES = ("NIC", "FC", "HA/SS", "HA/AM", "HA/RS", "SPS")


def restart_monitors(monitors: int) -> str:
    """One group active on server1 and a monitor per device `dev-<i>` of server1: each first
    fault of a monitor gives exactly one restart command; a repeat gives none."""
    lines = [
        "servers: {server1: {server_group: a}, server2: {server_group: a}, server3: {server_group: b}}",
        "groups: {g1: {servers: [server1, server2, server3]}}",
        "service: {heartbeat_timeout: 1h}",
        "monitors:",
    ]
    lines += [
        f"  mrw-{i}: {{category: FC, keyword: dev-{i}, servers: {{server1: {{}}}},"
        " recovery: {action: restart, target: g1, max_restarts: 1}}"
        for i in range(monitors)
    ]
    return "\n".join(lines) + "\n"


def large_cluster(monitors: int, servers: int) -> str:
    """`servers` servers in two sites, a group per pair of servers, and `monitors` monitors
    spread over the servers and the six categories, in the block style of the shipped example."""
    lines = ["servers:"]
    for s in range(servers):
        lines += [f"  server{s}:", f"    server_group: site-{s % 2}"]
    lines.append("groups:")
    for g in range(servers // 2):
        lines += [
            f"  group{g}:",
            f"    servers: [server{2 * g}, server{2 * g + 1}]",
            f"    resources: [fip{g}, app{g}]",
        ]
    lines.append("monitors:")
    for m in range(monitors):
        server = m % servers
        group = server // 2
        lines += [
            f"  mrw{m}:",
            f"    category: {CATEGORIES[m % len(CATEGORIES)]}",
            f"    keyword: dev{m}",
            "    servers:",
            f"      server{server}: {{}}",
            "    recovery:",
            "      action: failover",
            f"      target: group{group}",
            "      max_failovers: 1",
            "      final_action: stop_group",
            "      reset_counts_after: 10m",
        ]
    lines += ["service:", "  heartbeat_timeout: 1h"]
    # As a deployment has them: without handlers every monitor earns check-config warnings
    # (30,000 lines at this size) that no real configuration would carry.
    lines += ["agent:", "  handlers:"]
    lines += [
        f"    {handler}: {{run: /usr/local/sbin/mrwbus-{handler.replace('.', '-')}, timeout: 60s}}"
        for handler in ("failover.stop", "failover.start", "final_action.stop_group")
    ]
    return "\n".join(lines) + "\n"
