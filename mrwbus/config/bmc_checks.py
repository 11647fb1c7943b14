"""The BMC settings a fence needs, checked against the rest of the file (docs/fencing.md)."""

from __future__ import annotations

from collections.abc import Iterator

from mrwbus.config.model import RESERVED_FENCE_OPTIONS, ClusterConfig
from mrwbus.errors import ConfigIssue


def check_bmcs(config: ClusterConfig) -> Iterator[ConfigIssue]:
    """A BMC names real peers to fence from, and leaves the lines mrwbus writes to mrwbus."""
    for name, server in config.servers.items():
        if server is None or server.bmc is None:
            continue
        where = f"servers.{name}.bmc"
        for key in sorted(set(server.bmc.options) & RESERVED_FENCE_OPTIONS):
            yield ConfigIssue(
                f"{where}.options.{key}",
                "is written by mrwbus from the BMC's own keys (the password from password_file)",
            )
        for index, fencer in enumerate(server.bmc.fenced_by or ()):
            if fencer not in config.servers:
                yield ConfigIssue(f"{where}.fenced_by.{index}", f"unknown server {fencer!r}")
            elif fencer == name:
                yield ConfigIssue(f"{where}.fenced_by.{index}", "a server never fences itself")
        if server.bmc.fenced_by == [] or len(config.servers) < 2:
            yield ConfigIssue(f"{where}", "no other server could fence it")
