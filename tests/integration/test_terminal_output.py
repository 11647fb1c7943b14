"""What a one-shot verb writes to a terminal, as a separate process on a real pseudo-terminal:
colour only when wanted, and nothing but the answer or one sentence."""

from __future__ import annotations

import asyncio
import os
import pty
import subprocess
import sys

import pytest

from mrwbus.relay import make_fault
from tests.integration.broker import BusProbe
from tests.integration.configs import two_servers_one_nic_monitor
from tests.integration.conftest import RunningService

pytestmark = pytest.mark.broker

CLUSTER = two_servers_one_nic_monitor()

ESCAPE = b"\x1b"


def _on_a_terminal(argv: list[str], **env: str) -> tuple[int, bytes]:
    """`python -m mrwbus ARGV` with stdout and stderr on a pseudo-terminal, as a person runs it."""
    controller, terminal = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "MRWBUS_DEBUG")}
    environment.update(env, TERM="xterm")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "mrwbus", *argv],
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=terminal,
            env=environment,
            timeout=60,
        )
    finally:
        os.close(terminal)
    output = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the terminal is closed and drained
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    return done.returncode, output


async def test_no_color_means_no_escape_sequence_even_on_a_terminal(
    start_service: RunningService, probe: BusProbe, amqp_url: str
) -> None:
    await start_service(CLUSTER)
    await probe.publish(make_fault("server1", "NIC", "eth0", "link down"))
    await probe.next_commands(1)
    argv = ["status", "--amqp-url", amqp_url]

    # The check means something: on a terminal, the Error row is coloured...
    code, coloured = await asyncio.to_thread(_on_a_terminal, argv)
    assert code == 0 and b"Error" in coloured
    assert ESCAPE in coloured
    # ...and with NO_COLOR it is not, nor is anything else.
    code, plain = await asyncio.to_thread(_on_a_terminal, argv, NO_COLOR="1")
    assert code == 0 and b"Error" in plain
    assert ESCAPE not in plain
    # Not a terminal: no colour either. In a thread, as above: the service runs in this event
    # loop, and a blocked loop cannot answer.
    piped = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "mrwbus", *argv],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert ESCAPE not in piped.stdout


def test_an_unreachable_broker_is_one_sentence_and_exit_code_3() -> None:
    """No aiormq log line before the sentence, no traceback after it."""
    code, output = _on_a_terminal(["status", "--amqp-url", "amqp://guest:guest@127.0.0.1:1/"])
    lines = output.decode().strip().splitlines()
    assert code == 3
    assert len(lines) == 1, lines
    assert lines[0].startswith("mrwbus: cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1/")
