"""An operator's verb decided and applied, as the service's control answers do it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mrwbus.core.cluster import ClusterState
from mrwbus.core.decision import Decision
from mrwbus.messages import Event


def operate(
    cluster: ClusterState, verb: Callable[..., Decision], *args: Any, **kwargs: Any
) -> list[Event]:
    """Decide `verb` on `cluster`, apply it, and return its events."""
    return list(cluster.apply(verb(cluster, *args, **kwargs)).events)
