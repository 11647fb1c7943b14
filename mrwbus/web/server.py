"""The HTTP side of the service: the live status page, its JSON, `/metrics` and `/healthz`.

Read-only: every route is a GET, nothing here changes the cluster (that is `mrwbus clear` and
friends, over the bus). It runs in the service's event loop and reads the service's state
directly; it binds to 127.0.0.1 unless told otherwise, as it has no authentication.

Routes:
  /               the status page (one HTML file, inline CSS and JS, nothing from the internet)
  /events/stream  server-sent events feeding the page (see `stream.py`)
  /api/status     the status report, as `mrwbus status --json` prints it
  /api/events     the recent events, oldest first (`?limit=N` for the last N)
  /api/history    the newest history records, newest first, filtered as `mrwbus history`
                  filters (`?monitor=&server=&group=&category=&code=&outcome=&limit=`)
  /metrics        Prometheus text format
  /healthz        200 when healthy, else 503, with the reasons as JSON
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from importlib import resources
from types import TracebackType
from typing import Any

from aiohttp import web

from mrwbus.core.history import HistoryFilter
from mrwbus.errors import StatusPageError
from mrwbus.messages import Event
from mrwbus.service.service import Service
from mrwbus.telemetry.exposition import Metrics
from mrwbus.web.address import DEFAULT_HOST, DEFAULT_PORT
from mrwbus.web.healthz import assess
from mrwbus.web.prometheus import exposition
from mrwbus.web.stream import KEEPALIVE, StatusStream, event_json, status_json

log = logging.getLogger(__name__)

HISTORY_FILTERS = ("monitor", "server", "group", "category", "code", "outcome")

_PAGE_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


class StatusServer:
    """Serves the status page beside a running `Service`; `port=0` picks a free port."""

    def __init__(
        self,
        service: Service,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        tick: float = 1.0,
        keepalive: float = 15.0,
    ) -> None:
        self.service = service
        self.host = host
        self._requested_port = port
        self._tick = tick
        self._keepalive = keepalive
        self._page = resources.files("mrwbus.web").joinpath("static/status.html").read_bytes()
        self._runner: web.AppRunner | None = None
        self._socket: socket.socket | None = None
        self._closing = asyncio.Event()
        self._streams: set[asyncio.Task[Any]] = set()
        self._own_metrics = Metrics()

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the status server is not started")
        port: int = self._socket.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def metrics(self) -> Metrics:
        # Until the service owns a `Metrics`, the latency histogram stays empty.
        found = getattr(self.service, "metrics", None)
        return found if isinstance(found, Metrics) else self._own_metrics

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._socket = _bind(self.host, self._requested_port)
        app = web.Application()
        app.router.add_get("/", self._page_handler)
        app.router.add_get("/api/status", self._status_handler)
        app.router.add_get("/api/events", self._events_handler)
        app.router.add_get("/api/history", self._history_handler)
        app.router.add_get("/events/stream", self._stream_handler, allow_head=False)
        app.router.add_get("/metrics", self._metrics_handler)
        app.router.add_get("/healthz", self._health_handler)
        app.on_response_prepare.append(_security_headers)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket).start()
        log.info("status page on %s", self.url)

    async def stop(self) -> None:
        self._closing.set()
        if self._streams:
            await asyncio.wait(set(self._streams), timeout=5)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    async def __aenter__(self) -> StatusServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- routes -------------------------------------------------------------------------

    async def _page_handler(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self._page,
            content_type="text/html",
            charset="utf-8",
            headers={"Content-Security-Policy": _PAGE_POLICY},
        )

    async def _status_handler(self, request: web.Request) -> web.Response:
        return _json(status_json(self.service.status_report()))

    async def _events_handler(self, request: web.Request) -> web.Response:
        recent: list[Event] = list(self.service.events.recent)
        limit = request.query.get("limit")
        if limit is not None:
            if not limit.isdigit():
                return _json({"error": "limit must be a whole number"}, status=400)
            recent = recent[-int(limit) :] if int(limit) else []
        return _json([event_json(event) for event in recent])

    async def _history_handler(self, request: web.Request) -> web.Response:
        query = request.query
        limit = query.get("limit", "100")
        if not limit.isdigit():
            return _json({"error": "limit must be a whole number"}, status=400)
        given = {key: query.get(key) or None for key in HISTORY_FILTERS}
        wanted = HistoryFilter(
            monitor=given["monitor"],
            server=given["server"],
            group=given["group"],
            category=given["category"],
            code=given["code"],
            outcome=given["outcome"],
        )
        recent = getattr(self.service, "recent_history", None)
        found: list[dict[str, Any]] = []
        for record in recent.newest_first() if recent is not None else ():
            if len(found) >= int(limit):
                break
            if wanted(record):
                found.append(record)
        return _json(found)

    async def _metrics_handler(self, request: web.Request) -> web.Response:
        body, content_type = exposition(
            self.service.counters,
            self.service.health,
            self.metrics,
            self.service.status_report(),
            request.headers.get("Accept"),
        )
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _health_handler(self, request: web.Request) -> web.Response:
        report = assess(self.service.health)
        body = report.as_json()
        if (forwarder := getattr(self.service, "alerting", None)) is not None:
            # Shown, not judged: an Alertmanager that is down does not make the service unready.
            body["alerting"] = forwarder.health_json(time.monotonic())
        return _json(body, status=report.http_status)

    async def _stream_handler(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._streams.add(task)
        queue = self.service.events.listen()  # before the snapshot, so no event falls in between
        try:
            response = web.StreamResponse(
                headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
            )
            await response.prepare(request)
            stream = StatusStream(self.service.status_report, lambda: assess(self.service.health))
            with contextlib.suppress(ConnectionError):
                await response.write(stream.opening(self.service.events.recent))
                await self._feed(response, stream, queue)
            return response
        finally:
            self.service.events.unlisten(queue)
            self._streams.discard(task)

    async def _feed(
        self, response: web.StreamResponse, stream: StatusStream, queue: asyncio.Queue[Event]
    ) -> None:
        loop = asyncio.get_running_loop()
        last_write = loop.time()
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            while not self._closing.is_set():
                getting = asyncio.ensure_future(queue.get())
                await asyncio.wait(
                    {getting, closing}, timeout=self._tick, return_when=asyncio.FIRST_COMPLETED
                )
                if closing.done() and not getting.done():
                    getting.cancel()  # stopping: end the stream, no last tick
                    break
                if getting.done():
                    chunk: bytes | None = stream.on_event(getting.result())
                else:
                    getting.cancel()
                    chunk = stream.on_tick()
                if chunk is None and loop.time() - last_write >= self._keepalive:
                    chunk = KEEPALIVE
                if chunk is not None:
                    await response.write(chunk)
                    last_write = loop.time()
        finally:
            closing.cancel()


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise StatusPageError(f"cannot serve the status page on {host}:{port}: {exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise StatusPageError(f"cannot serve the status page on {host}:{port}: {reason}") from exc
    return sock


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(), status=status, content_type="application/json"
    )


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
