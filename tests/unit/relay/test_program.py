"""exec sources: the JSON line contract and the restart back-off."""

from __future__ import annotations

import pytest

from mrwbus.messages import Category
from mrwbus.relay.program import next_backoff, parse_program_line


def test_a_line_needs_category_and_device() -> None:
    line = parse_program_line('{"category": "HA/AM", "device": "app1", "state": "recovered"}')
    assert (line.category, line.device, line.state, line.message) == (
        Category.HA_AM,
        "app1",
        "recovered",
        "",
    )
    with pytest.raises(ValueError, match="device"):
        parse_program_line('{"category": "NIC"}')
    with pytest.raises(ValueError):
        parse_program_line("not json")
    with pytest.raises(ValueError, match="Extra inputs"):
        parse_program_line('{"category": "NIC", "device": "eth0", "colour": "red"}')


def test_backoff_doubles_to_the_most_and_starts_over_after_a_long_run() -> None:
    waits = [1.0]
    for _ in range(8):
        waits.append(next_backoff(waits[-1], ran_for=0.1, low=1.0, high=60.0))
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert next_backoff(0.0, ran_for=0.1, low=1.0, high=60.0) == 1.0
    assert next_backoff(60.0, ran_for=61.0, low=1.0, high=60.0) == 1.0
