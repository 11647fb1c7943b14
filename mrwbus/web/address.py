"""Where the status page listens: the `--http` argument, read without the web stack (a service
started with `--http off` never imports aiohttp's server)."""

from __future__ import annotations

from mrwbus.errors import StatusPageError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def parse_http_address(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPv6]:PORT` or `:PORT` (on 127.0.0.1) -> (host, port)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise StatusPageError(f"--http {text!r} is not HOST:PORT (for example 127.0.0.1:8080)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or DEFAULT_HOST, int(port_text)
