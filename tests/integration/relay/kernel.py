"""Real kernel objects for relay tests: a veth pair with one end in its own network namespace."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=10)


@dataclass(frozen=True)
class VethPair:
    """`host` stays in this namespace (the relay watches it); `peer` lives in `namespace`.

    Pulling `peer` down takes the carrier from `host`, as a cable pulled at the switch would."""

    host: str
    peer: str
    namespace: str

    def peer_down(self) -> None:
        _ip("-n", self.namespace, "link", "set", self.peer, "down")

    def peer_up(self) -> None:
        _ip("-n", self.namespace, "link", "set", self.peer, "up")


@contextmanager
def veth_pair() -> Iterator[VethPair]:
    """A fresh veth pair with unique names, both ends up; removed afterwards, even on failure."""
    tag = uuid.uuid4().hex[:8]
    pair = VethPair(host=f"mrw{tag}h", peer=f"mrw{tag}n", namespace=f"mrwbus-test-{tag}")
    made = _ip("netns", "add", pair.namespace, check=False)
    if made.returncode != 0:
        pytest.skip(
            "needs CAP_NET_ADMIN to create network namespaces and veth pairs "
            f"(ip netns add: {made.stderr.strip()})"
        )
    try:
        _ip("link", "add", pair.host, "type", "veth", "peer", "name", pair.peer)
        _ip("link", "set", pair.peer, "netns", pair.namespace)
        _ip("link", "set", pair.host, "up")
        _ip("-n", pair.namespace, "link", "set", pair.peer, "up")
        yield pair
    finally:
        _ip("link", "del", pair.host, check=False)  # takes the peer with it
        _ip("netns", "del", pair.namespace, check=False)
