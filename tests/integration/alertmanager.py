"""A real Alertmanager (Debian's `prometheus-alertmanager`) for a test: its own config and
storage in a temporary folder, on 127.0.0.1, with clustering off, routing critical alerts to a
webhook receiver the test serves (aiohttp). Missing binary: the test fails, never skips."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

BINARY = "prometheus-alertmanager"

CONFIG = """\
route:
  receiver: nobody
  group_by: [alertname, monitor, server, group]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - receiver: oncall
      matchers: ['severity="critical"', 'cluster="test"']
receivers:
  - name: nobody
  - name: oncall
    webhook_configs:
      - url: {hook}
        send_resolved: true
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Webhook:
    """What the routed receiver got: every alert of every notification, in order."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        self.alerts.extend(payload["alerts"])
        self.arrived.set()
        return web.Response(text="ok")

    async def wait_for(
        self, matches: Callable[[dict[str, Any]], bool], timeout: float = 30.0
    ) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            while True:
                for alert in self.alerts:
                    if matches(alert):
                        return alert
                self.arrived.clear()
                await self.arrived.wait()

        try:
            return await asyncio.wait_for(find(), timeout)
        except TimeoutError:
            raise AssertionError(f"the webhook never got it; it got {self.alerts}") from None


@dataclass
class Alertmanager:
    url: str
    webhook: Webhook

    async def alerts(self, **labels: str) -> list[dict[str, Any]]:
        """The active alerts with these labels (GET /api/v2/alerts)."""
        matchers = [f'{name}="{value}"' for name, value in labels.items()]
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{self.url}/api/v2/alerts", params=[("filter", m) for m in matchers]
            ) as got,
        ):
            got.raise_for_status()
            found: list[dict[str, Any]] = await got.json()
            return found

    async def wait_alerts(
        self,
        condition: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 30.0,
        **labels: str,
    ) -> list[dict[str, Any]]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = await self.alerts(**labels)
            if condition(found):
                return found
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"Alertmanager never showed the expected alerts: {found}")
            await asyncio.sleep(0.2)


def binary() -> str:
    found = shutil.which(BINARY)
    if found is None:
        pytest.fail(
            f"{BINARY} is not installed: install Debian's `prometheus-alertmanager` package; "
            "the Alertmanager integration cannot be tested without it"
        )
    return found


@asynccontextmanager
async def webhook_server() -> AsyncIterator[tuple[Webhook, str]]:
    hook = Webhook()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield hook, f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def running_alertmanager(folder: Path, port: int) -> AsyncIterator[Alertmanager]:
    """Alertmanager on 127.0.0.1:`port`, ready; stopped and waited for afterwards."""
    executable = binary()
    async with webhook_server() as (hook, hook_url):
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "alertmanager.yml"
        config.write_text(CONFIG.format(hook=json.dumps(hook_url)))
        log = (folder / "alertmanager.log").open("ab")
        process = subprocess.Popen(
            [
                executable,
                f"--config.file={config}",
                f"--storage.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            await _wait_ready(url, process, folder)
            yield Alertmanager(url, hook)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


async def _wait_ready(url: str, process: subprocess.Popen[bytes], folder: Path) -> None:
    deadline = asyncio.get_running_loop().time() + 60
    async with aiohttp.ClientSession() as session:
        while True:
            if process.poll() is not None:
                log = (folder / "alertmanager.log").read_text(errors="replace")
                raise AssertionError(f"Alertmanager exited ({process.returncode}):\n{log}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{url}/-/ready") as ready:
                    if ready.status == 200:
                        return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("Alertmanager did not become ready within 60 s")
            await asyncio.sleep(0.1)
