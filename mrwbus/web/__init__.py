"""The service's HTTP side: a live status page, `/metrics` and `/healthz` (`server.py`).

Only the address is read here: `mrwbus.web.server` (aiohttp's server) is imported by what serves."""

from mrwbus.errors import StatusPageError
from mrwbus.web.address import DEFAULT_HOST, DEFAULT_PORT, parse_http_address

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "StatusPageError", "parse_http_address"]
