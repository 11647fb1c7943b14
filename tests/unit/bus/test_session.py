"""The pure parts of `bus.session`: what travels the reconnect path, and the back-off."""

from __future__ import annotations

from types import SimpleNamespace

import aiormq
import pytest

from mrwbus.bus.session import SESSION_ERRORS, SessionLost, SessionRunner, _as_lost, backoff
from mrwbus.errors import JournalFailed, MrwbusError, NotConnected


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError("reset"),
        SessionLost("the broker cancelled the consumer of q"),
        aiormq.exceptions.ChannelInvalidStateError("closed"),
        TimeoutError(),
    ],
)
def test_connection_and_channel_failures_end_the_session(error: BaseException) -> None:
    assert isinstance(error, SESSION_ERRORS)


@pytest.mark.parametrize(
    "error",
    [
        JournalFailed("disk full"),
        NotConnected("not connected"),
        OSError(28, "No space left on device"),
        ValueError("a bug"),
    ],
)
def test_nothing_else_travels_the_reconnect_path(error: BaseException) -> None:
    assert not isinstance(error, SESSION_ERRORS)


def test_our_errors_are_no_connection_errors() -> None:
    assert not issubclass(NotConnected, ConnectionError)
    assert not issubclass(JournalFailed, ConnectionError)
    assert issubclass(JournalFailed, MrwbusError)


def test_backoff_grows_and_is_capped() -> None:
    wait = backoff()
    assert wait.multiplier == 0.2 and wait.max == 5


async def test_no_publisher_outside_a_session() -> None:
    runner = SessionRunner(["amqp://nowhere/"], name="test", prefetch=1)
    with pytest.raises(NotConnected):
        runner.current_publisher()
    assert not runner.health.connected and not runner.ready.is_set()


class _Connection:
    """aio-pika's connection as `_as_lost` reads it: its own `is_closed`, and aiormq's under it
    (`transport.connection.is_closed`), which knows of a close a moment earlier; aiormq's bare
    RuntimeError "<Connection ...> closed" comes from that one."""

    def __init__(self, closed: bool, aiormq_closed: bool | None = None) -> None:
        self.is_closed = closed
        underlay = SimpleNamespace(is_closed=closed if aiormq_closed is None else aiormq_closed)
        self.transport = SimpleNamespace(connection=underlay)


def test_a_closed_connection_s_runtime_error_is_a_lost_session() -> None:
    found = _as_lost(
        RuntimeError('<Connection: "amqp://b/" at 0x1> closed'), _Connection(False, True)
    )  # type: ignore[arg-type]
    assert isinstance(found, SessionLost)
    found = _as_lost(RuntimeError("anything"), _Connection(True))  # type: ignore[arg-type]
    assert isinstance(found, SessionLost)


def test_any_other_runtime_error_is_a_bug() -> None:
    with pytest.raises(RuntimeError, match="a bug"):
        _as_lost(RuntimeError("a bug"), _Connection(False))  # type: ignore[arg-type]
