"""sd_notify: one datagram to $NOTIFY_SOCKET, nothing without it, never an exception."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from mrwbus import sd_notify


def test_without_systemd_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd_notify.ready("consuming") is False


def test_ready_sends_one_datagram(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert sd_notify.ready("active: consuming faults") is True
        assert server.recv(4096) == b"READY=1\nSTATUS=active: consuming faults"


def test_an_abstract_socket_is_addressed_with_a_nul_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"mrwbus-test-{id(monkeypatch)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sd_notify.stopping() is True
        assert server.recv(4096) == b"STOPPING=1\nSTATUS=stopping"


def test_a_dead_socket_is_a_warning_not_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert sd_notify.status("x") is False


async def test_announce_says_ready_once_then_each_change_then_stopping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    path = tmp_path / "notify"
    states: list[str | None] = [None, "standby", "standby", "active", None]
    stop = asyncio.Event()

    def state() -> str | None:
        current = states.pop(0) if states else None
        if not states:
            stop.set()
        return current

    monkeypatch.setattr(sd_notify, "POLL", 0.001)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        await sd_notify.announce(state, stop)
        received = []
        while True:
            try:
                received.append(server.recv(4096))
            except BlockingIOError:
                break
    assert received == [
        b"READY=1\nSTATUS=standby",
        b"STATUS=active",
        b"STATUS=reconnecting to the broker",
        b"STOPPING=1\nSTATUS=stopping",
    ]
