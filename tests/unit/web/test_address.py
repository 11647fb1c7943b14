"""`--http HOST:PORT` as operators write it."""

from __future__ import annotations

import pytest

from mrwbus.web import StatusPageError, parse_http_address


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("0.0.0.0:9000", ("0.0.0.0", 9000)),
        ("localhost:0", ("localhost", 0)),
        (":8081", ("127.0.0.1", 8081)),
        ("[::1]:8080", ("::1", 8080)),
    ],
)
def test_parsed(text: str, address: tuple[str, int]) -> None:
    assert parse_http_address(text) == address


@pytest.mark.parametrize("text", ["8080", "host:", "host:http", "host:70000", ""])
def test_refused_with_a_sentence(text: str) -> None:
    with pytest.raises(StatusPageError, match="is not HOST:PORT"):
        parse_http_address(text)
