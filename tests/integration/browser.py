"""Headless Chromium driven over the DevTools protocol: just enough to load a page, read its
DOM and take a screenshot. Python only: aiohttp's websocket client, no driver binary, no npm.

A missing browser is an error, not a skip: the status page must be tested in a real browser.
Install Debian's `chromium` package, or point MRWBUS_CHROMIUM at another Chromium binary.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

FLAGS = (
    "--headless",
    "--no-sandbox",  # root in CI; the page under test is our own
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",  # Chromium picks a port and writes it to DevToolsActivePort
)


class BrowserError(AssertionError):
    """Chromium is missing, would not start, or a page script failed: the test fails."""


def find_chromium() -> str:
    chosen = os.environ.get("MRWBUS_CHROMIUM")
    if chosen:
        if not os.access(chosen, os.X_OK):
            raise BrowserError(f"MRWBUS_CHROMIUM={chosen} is not an executable Chromium")
        return chosen
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserError(
        "Chromium is not installed: the status page test needs a real browser "
        "(apt-get install chromium, or set MRWBUS_CHROMIUM)"
    )


class Page:
    """One browser tab, spoken to over its DevTools websocket."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._socket:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            future = self._waiting.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
        for future in self._waiting.values():  # the browser went away
            if not future.done():
                future.set_exception(BrowserError("the browser closed the DevTools connection"))

    async def send(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        number = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[number] = future
        await self._socket.send_json({"id": number, "method": method, "params": params})
        answer = await asyncio.wait_for(future, timeout)
        if "error" in answer:
            raise BrowserError(f"{method} failed: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable values only)."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"the page threw: {text}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        """Poll until the expression is truthy, and return its value."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"after {timeout}s the page still says {value!r} for {expression}"
                )
            await asyncio.sleep(0.1)

    async def navigate(self, url: str) -> None:
        await self.send("Page.enable")
        result = await self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        await self.wait_for("document.readyState === 'complete'")

    async def screenshot(self, path: Path, width: int = 1280) -> None:
        """A PNG of the whole page (not just the viewport) at `width` CSS pixels."""
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=800,
            deviceScaleFactor=1,
            mobile=False,
        )
        height = await self.evaluate("document.documentElement.scrollHeight")
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=int(height),
            deviceScaleFactor=1,
            mobile=False,
        )
        await asyncio.sleep(0.3)  # let layout settle after the resize
        shot = await self.send("Page.captureScreenshot", format="png")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    async def close(self) -> None:
        await self._socket.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def chromium_page(start_timeout: float = 30.0) -> AsyncIterator[Page]:
    """A headless Chromium with one blank tab; the browser and its profile go away after."""
    binary = find_chromium()
    profile = Path(tempfile.mkdtemp(prefix="mrwbus-chromium-"))
    log_path = profile / "chromium.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            binary,
            *FLAGS,
            f"--user-data-dir={profile}",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        port = await _devtools_port(process, profile, log_path, start_timeout)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            target = next(t for t in targets if t.get("type") == "page")
            socket = await http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
            page = Page(socket)
            try:
                yield page
            finally:
                await page.close()
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        shutil.rmtree(profile, ignore_errors=True)


async def _devtools_port(
    process: asyncio.subprocess.Process, profile: Path, log_path: Path, timeout: float
) -> int:
    marker = profile / "DevToolsActivePort"
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if marker.exists():
            first_line = marker.read_text().splitlines()[:1]
            if first_line and first_line[0].isdigit():
                return int(first_line[0])
        if process.returncode is not None or asyncio.get_running_loop().time() > deadline:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise BrowserError(
                f"Chromium did not start (exit status {process.returncode}):\n{tail}"
            )
        await asyncio.sleep(0.1)
