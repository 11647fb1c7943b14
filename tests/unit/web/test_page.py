"""The status page is one self-contained file: it must work on a cluster with no internet."""

from __future__ import annotations

import re
from importlib import resources

PAGE = resources.files("mrwbus.web").joinpath("static/status.html").read_text("utf-8")


def test_nothing_is_loaded_from_elsewhere() -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", PAGE)
    assert not re.search(r"@import|url\(", PAGE)
    assert "<script src" not in PAGE and "<link" not in PAGE


def test_live_through_the_event_stream_on_a_relative_path() -> None:
    # Relative, so the page also works behind a reverse proxy under a path prefix.
    assert 'new EventSource("events/stream")' in PAGE
    for kind in ("snapshot", "update", "status"):
        assert f'addEventListener("{kind}"' in PAGE


def test_values_never_become_markup() -> None:
    # Monitor names, device names and event texts come from the bus: text only.
    assert "innerHTML" not in PAGE and "insertAdjacentHTML" not in PAGE
    assert "document.write" not in PAGE
