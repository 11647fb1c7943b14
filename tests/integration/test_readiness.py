"""systemd readiness, as `Type=notify` units see it: the real `mrwbus run` and `mrwbus agent`
processes send READY=1 to $NOTIFY_SOCKET once they consume, and STOPPING=1 on SIGTERM."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from tests.integration.configs import two_servers_one_nic_monitor
from tests.integration.processes import Processes

pytestmark = pytest.mark.broker

CLUSTER = two_servers_one_nic_monitor()


async def _datagrams(sock: socket.socket, until: bytes, timeout: float = 30) -> list[bytes]:
    """What systemd would receive, until a datagram containing `until`."""
    received: list[bytes] = []
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        while not any(until in datagram for datagram in received):
            received.append(await loop.sock_recv(sock, 4096))
    return received


@pytest.mark.parametrize("verb", ["service", "agent"])
async def test_ready_once_consuming_then_stopping(
    verb: str, amqp_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text(CLUSTER)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(tmp_path / "notify"))
        notify.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
        processes = Processes(config, tmp_path, amqp_url)
        try:
            process = await (
                processes.service() if verb == "service" else processes.agent("server1")
            )
            ready = await _datagrams(notify, b"READY=1")
            expected = (
                b"active: consuming faults"
                if verb == "service"
                else b"consuming the commands of server1"
            )
            assert ready[-1] == b"READY=1\nSTATUS=" + expected, processes.logs()
            assert await process.terminate() == 0
            assert (await _datagrams(notify, b"STOPPING=1"))[-1] == b"STOPPING=1\nSTATUS=stopping"
        finally:
            await processes.stop_all()
