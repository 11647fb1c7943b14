"""`/healthz` and `/metrics` for a process with no status page (the relay, the agent).

The process gives two functions, read at each request: its health (an HTTP status and a JSON
body) and its metric families (rendered by prometheus_client, `mrwbus.telemetry.exposition`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from mrwbus.telemetry.exposition import CONTENT_TYPE, MetricFamily, render_text

HealthOf = Callable[[], tuple[int, dict[str, Any]]]
FamiliesOf = Callable[[], list[MetricFamily]]


async def serve_endpoints(
    host: str, port: int, health: HealthOf, families: FamiliesOf
) -> web.AppRunner:
    """Start serving; the caller cleans the returned runner up. Raises OSError when the
    address cannot be bound."""

    async def healthz(request: web.Request) -> web.Response:
        code, body = health()
        return web.Response(
            body=json.dumps(body).encode(), status=code, content_type="application/json"
        )

    async def metrics(request: web.Request) -> web.Response:
        text = render_text(families())
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError:
        await runner.cleanup()
        raise
    return runner
