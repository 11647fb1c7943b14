"""An operator's verb decided and applied, as the service's control answers do it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mrwbus.core import operator_verbs
from mrwbus.core.cluster import ClusterState
from mrwbus.core.decision import Decision
from mrwbus.messages import Event
from tests.unit.conftest import T0


def operate(
    cluster: ClusterState, verb: Callable[..., Decision], *args: Any, **kwargs: Any
) -> list[Event]:
    """Decide `verb` on `cluster`, apply it, and return its events."""
    return list(cluster.apply(verb(cluster, *args, **kwargs)).events)


def clear(cluster: ClusterState, monitor: str, server: str, *, cause: str) -> list[Event]:
    """An operator's clear at T0, counts kept."""
    return operate(
        cluster,
        operator_verbs.clear,
        monitor,
        server,
        reset_counts=False,
        by="t",
        now=T0,
        cause=cause,
    )
