"""The two processes a benchmark compares, started the same way: the bare relay and the real
`mrwbus run` (journal, confirms, idempotency all on), each against its own vhost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.broker import faults_queue_state

BARE, MRWBUS = "bare relay", "mrwbus"


class Contender:
    def __init__(
        self, kind: str, url: str, config: Path, log: Path, bare: str = "benchmarks.bare_relay"
    ) -> None:
        self.kind = kind
        self.bare = bare
        """The module the bare contender runs (`python -m MODULE URL`)."""
        self.url = url
        self.config = config
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def argv(self) -> list[str]:
        if self.kind == BARE:
            return [sys.executable, "-m", self.bare, self.url]
        return [
            sys.executable,
            "-m",
            "mrwbus",
            "run",
            "--config",
            str(self.config),
            "--http",
            "off",
            "--log-level",
            "WARNING",
        ]

    async def start(self) -> float:
        """Start and wait until it consumes faults; returns the seconds that took."""
        started = time.monotonic()
        env = dict(os.environ, MRWBUS_AMQP_URL=self.url)
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(self.argv, env=env, stdout=handle, stderr=handle)
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited; see {self.log}")
            try:
                _, consumers = await faults_queue_state(self.url)
            except Exception:  # the queue is not declared yet
                consumers = 0
            if consumers:
                return time.monotonic() - started
            await asyncio.sleep(0.05)

    def rss_mb(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
