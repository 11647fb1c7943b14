"""exec sources: the JSON line contract and the restart back-off."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from mrwbus.messages import Category
from mrwbus.relay.program import (
    ExecSourceConfig,
    LineSplitter,
    ProgramSource,
    next_backoff,
    parse_program_line,
)
from mrwbus.relay.sources import Notice, Observation


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


def test_a_line_over_the_limit_is_dropped_whole_and_the_next_one_still_comes() -> None:
    splitter = LineSplitter(limit=10)
    assert splitter.feed(b"short\n0123456789") == [b"short"]
    assert splitter.feed(b"ABC") == []  # 13 bytes and no end yet: dropped
    assert splitter.feed(b"DEF\nnext\n") == [b"next"]
    assert splitter.skipped == [16]
    assert splitter.feed(b"x" * 25 + b"\n" + b"y" * 10 + b"\n") == [b"y" * 10]
    assert splitter.skipped == [16, 25]


async def test_an_over_long_line_is_skipped_and_the_programs_next_fault_goes_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # 1 MB of one line, then 100 KB of `{`, then a good fault, from the same program run.
    script = tmp_path / "noisy.py"
    script.write_text(
        "import sys, time\n"
        "sys.stdout.write('x' * 1_000_000 + '\\n')\n"
        "sys.stdout.write('{' * 100_000 + '\\n')\n"
        "sys.stdout.write('[' * 60_000 + '\\n')\n"
        'sys.stdout.write(\'{"category": "NIC", "device": "eth9"}\\n\')\n'
        "sys.stdout.flush()\n"
        "time.sleep(60)\n"
    )
    config = ExecSourceConfig.model_validate({"run": f"{sys.executable} {script}"})
    source = ProgramSource("noisy", config)
    seen: list[Observation] = []
    task = asyncio.create_task(source.run(seen.append))
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while not seen:
            assert asyncio.get_running_loop().time() < deadline, "the good line never came"
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert [(n.device, n.state) for n in seen if isinstance(n, Notice)] == [("eth9", "error")]
    assert source.starts == 1, "the program was killed and started again"
    skipped = [r.getMessage() for r in caplog.records if "longer than" in r.getMessage()]
    assert len(skipped) == 2, skipped
    assert any("not a fault" in r.getMessage() for r in caplog.records)  # the 60 KB of `[`
