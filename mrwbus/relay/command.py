"""`mrwbus relay --server NAME --config PATH [--once] [--http HOST:PORT]`: the relay's settings
for one server, what `--once` prints, and the daemon with its optional /healthz and /metrics."""

from __future__ import annotations

import asyncio
import contextlib

from mrwbus.bus.connection import Urls
from mrwbus.config.model import ClusterConfig
from mrwbus.errors import ConfigError, ConfigIssue, RelayError
from mrwbus.relay.daemon import Relay, snapshot
from mrwbus.relay.registry import RelaySettings, for_server


def relay_settings(config: ClusterConfig, source: str, server: str) -> RelaySettings:
    if server not in config.servers:
        raise ConfigError(source, [ConfigIssue("servers", f"has no server {server!r} (--server)")])
    return for_server(config.relay, server)


def print_once(settings: RelaySettings) -> None:
    for line in asyncio.run(snapshot(settings)):
        print(line)


def start_relay(settings: RelaySettings, url: Urls) -> Relay:
    try:
        return Relay(settings, url)
    except OSError as exc:
        raise RelayError(
            f"cannot use the spool in {settings.spool_dir}: {exc.strerror or exc}"
        ) from exc


async def serve_relay(relay: Relay, http: str | None, stop: asyncio.Event) -> None:
    """Run until `stop` is set, with /healthz and /metrics on `http` if given."""
    from mrwbus.relay.relay_http import serve_http

    runner = await serve_http(relay, http) if http else None
    try:
        await relay.run(stop)
    finally:
        if runner is not None:
            with contextlib.suppress(Exception):
                await runner.cleanup()
