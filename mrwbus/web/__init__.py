"""The service's HTTP side: a live status page, `/metrics` and `/healthz` (`server.py`)."""

from mrwbus.errors import StatusPageError
from mrwbus.web.server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    StatusServer,
    parse_http_address,
)

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "StatusPageError", "StatusServer", "parse_http_address"]
