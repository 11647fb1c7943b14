"""`mrwbus relay --server NAME --config PATH [--once] [--http HOST:PORT]`."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass

from mrwbus.config import load_config
from mrwbus.errors import ConfigError, ConfigIssue, RelayError
from mrwbus.relay.daemon import Relay, snapshot


@dataclass(frozen=True)
class RelayOptions:
    once: bool = False
    """Print what the sources see now and exit."""
    http: str | None = None
    """HOST:PORT for /healthz and /metrics."""
    log_level: str = "INFO"


def run_relay(config_path: str, server: str, url: str, options: RelayOptions) -> int:
    """`--once`: print and return; else run until SIGTERM or SIGINT."""
    from mrwbus.logs import configure_logging

    once, http, log_level = options.once, options.http, options.log_level

    config = load_config(config_path)
    if server not in config.servers:
        raise ConfigError(
            config_path, [ConfigIssue("servers", f"has no server {server!r} (--server)")]
        )
    settings = config.relay.for_server(server)
    if once:
        for line in asyncio.run(snapshot(settings)):
            print(line)
        return 0
    configure_logging(log_level)

    async def serve() -> None:
        from mrwbus.relay.http import serve_http

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            relay = Relay(settings, url)
        except OSError as exc:
            raise RelayError(
                f"cannot use the spool in {settings.spool_dir}: {exc.strerror or exc}"
            ) from exc
        runner = await serve_http(relay, http) if http else None
        try:
            await relay.run(stop)
        finally:
            if runner is not None:
                with contextlib.suppress(Exception):
                    await runner.cleanup()

    asyncio.run(serve())
    return 0
