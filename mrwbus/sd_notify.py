"""systemd's readiness protocol (sd_notify(3)) without a dependency: one datagram to $NOTIFY_SOCKET.

The units in packaging/systemd/ are `Type=notify`: systemd counts a daemon as started only when it
sends `READY=1`, so `systemctl start` returns once mrwbus consumes, and units ordered after it
start against a working bus. Outside systemd (no $NOTIFY_SOCKET) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


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
