"""The broker side of a benchmark: a vhost per contender and phase, queue depths, consumers."""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
import uuid
from typing import Any

import aio_pika

from mrwbus.bus.topology import FAULTS

HOST = os.environ.get("MRWBUS_BENCH_BROKER_HOST", "127.0.0.1")
MANAGEMENT = f"http://{HOST}:15672/api"
_AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()

RELAY_USER = "relay-server1"
"""The user the load generator publishes as: the service verifies senders (the default), and
only `relay-<server>` may report a server's faults."""
_RELAY_PASSWORD = "mrwbus-bench"


def _management(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        f"{MANAGEMENT}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": _AUTH, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
    return json.loads(text) if text and method == "GET" else None


class Vhost:
    """A fresh vhost, deleted on exit, so no phase sees another's messages or state."""

    def __init__(self, label: str) -> None:
        self.name = f"mrwbus-bench-{label}-{uuid.uuid4().hex[:8]}"
        self.url = f"amqp://guest:guest@{HOST}:5672/{self.name}"
        self.relay_url = f"amqp://{RELAY_USER}:{_RELAY_PASSWORD}@{HOST}:5672/{self.name}"

    def __enter__(self) -> Vhost:
        _management("PUT", f"/vhosts/{self.name}")
        _management(
            "PUT",
            f"/permissions/{self.name}/guest",
            {"configure": ".*", "write": ".*", "read": ".*"},
        )
        _management("PUT", f"/users/{RELAY_USER}", {"password": _RELAY_PASSWORD, "tags": ""})
        _management(
            "PUT",
            f"/permissions/{self.name}/{RELAY_USER}",
            {"configure": "^$", "write": f"^{FAULTS}$", "read": "^$"},
        )
        return self

    def __exit__(self, *_: object) -> None:
        _management("DELETE", f"/vhosts/{self.name}")
        # A user with a password written here must not outlive the phase on the broker. Another
        # benchmark run on the same broker may have deleted it already (a 404).
        try:
            _management("DELETE", f"/users/{RELAY_USER}")
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise

    def queues(self) -> int:
        """Queues in this vhost: the large configuration must not make one per server (a
        thousand quorum queues once wedged the shared broker for 40 minutes)."""
        return len(_management("GET", f"/queues/{self.name}?columns=name"))


async def faults_queue_state(url: str) -> tuple[int, int]:
    """(ready messages, consumers) of the faults queue, from a passive declare."""
    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(FAULTS, passive=True)
        result = queue.declaration_result
        return result.message_count or 0, result.consumer_count or 0
    finally:
        await connection.close()
