"""The cluster is started once for the session (about 16 s) and stopped at the end; a cluster
that already runs (a developer's) is used and left running."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.cluster.support import NODES, ClusterVhost, running, tool, up


@pytest.fixture(scope="session")
def rabbitmq_cluster() -> Iterator[None]:
    ours = sorted(running()) != sorted(NODES)
    if ours:
        tool("stop")
        tool("start")
    try:
        yield
    finally:
        if ours:
            tool("stop")


@pytest.fixture
async def cluster(rabbitmq_cluster: None) -> AsyncIterator[ClusterVhost]:
    vhost = ClusterVhost()
    vhost.create()
    try:
        yield vhost
    finally:
        for node in NODES:
            if node not in running():
                await up(node)
        vhost.delete()
