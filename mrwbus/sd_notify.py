"""systemd's readiness protocol (sd_notify(3)) without a dependency: one datagram to $NOTIFY_SOCKET.

The units in packaging/systemd/ are `Type=notify`: systemd counts a daemon as started only when it
sends `READY=1`, so `systemctl start` returns once mrwbus consumes, and units ordered after it
start against a working bus. Outside systemd (no $NOTIFY_SOCKET) every call does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)

POLL = 0.5
"""How often `announce` looks at the daemon's state: quicker than anyone watching notices."""


def notify(*assignments: str) -> bool:
    """Send `KEY=value` lines, e.g. `notify("READY=1", "STATUS=consuming")`; True if sent."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        # An abstract socket: the name starts with a NUL byte instead of '@'.
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(assignments).encode())
    except OSError as exc:
        # Readiness is a courtesy to the supervisor: never a reason to stop serving.
        log.warning("could not notify systemd at %s: %s", address, exc)
        return False
    return True


def ready(status: str) -> bool:
    return notify("READY=1", f"STATUS={status}")


def status(text: str) -> bool:
    return notify(f"STATUS={text}")


def stopping() -> bool:
    return notify("STOPPING=1", "STATUS=stopping")


async def announce(state: Callable[[], str | None], stop: asyncio.Event) -> None:
    """Run beside a daemon until `stop`: READY=1 the first time `state()` names a state (e.g.
    "consuming the commands of server1"), STATUS= on every change, STOPPING=1 at the end.

    `state()` returns None while the daemon is not ready (connecting); once it was ready, None
    shows as "reconnecting to the broker". Every verb that runs under a `Type=notify` unit
    (run, demo, agent, relay) runs this.
    """
    told: str | None = None
    while not stop.is_set():
        now = state() or ("reconnecting to the broker" if told else None)
        if now is not None and now != told:
            if told is None:
                ready(now)
            else:
                status(now)
            told = now
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL)
    stopping()
