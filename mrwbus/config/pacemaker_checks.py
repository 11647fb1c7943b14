"""The checks of `agent.backend: pacemaker` (docs/pacemaker.md): Pacemaker carries out what
the handlers it replaces would, so neither they nor OCF resources may be configured beside it,
and the names it maps must exist."""

from __future__ import annotations

from collections.abc import Iterator

from mrwbus.config.model import ClusterConfig
from mrwbus.config.pacemaker import PACEMAKER_HANDLERS
from mrwbus.errors import ConfigIssue


def check_pacemaker(config: ClusterConfig) -> Iterator[ConfigIssue]:
    settings = config.agent.pacemaker
    for name in settings.resources:
        if name not in config.groups and name not in config.resource_owners:
            yield ConfigIssue(
                f"agent.pacemaker.resources.{name}", f"unknown group or resource {name!r}"
            )
    for name in settings.nodes:
        if name not in config.servers:
            yield ConfigIssue(f"agent.pacemaker.nodes.{name}", f"unknown server {name!r}")
    if config.agent.backend != "pacemaker":
        return
    for name in config.agent.handlers:
        if name in PACEMAKER_HANDLERS:
            yield ConfigIssue(
                f"agent.handlers.{name}",
                "is carried out by Pacemaker with agent.backend: pacemaker; remove it "
                "(a group Pacemaker does not run takes its own under agent.groups.<group>)",
            )
    if config.resources:
        yield ConfigIssue(
            "resources",
            "OCF resources run by the agent and agent.backend: pacemaker exclude each other: "
            "Pacemaker runs the resources (declare them in its CIB)",
        )
