"""The history's figures: one fault's story among a million, and what-if over 100,000 faults.

    python -m benchmarks.history show [--faults 1000000]     # the broker; a vhost of its own
    python -m benchmarks.history what-if [--faults 100000]   # no broker

`show` writes `--faults` faults' records into a fresh vhost's history stream through the
service's own writer (`HistoryOut`: the index included), in messages of 200 faults as a busy
service's group commits write them, then times `fault_story` (what `mrwbus history show` runs)
for faults near the start, the middle and the end, and for one that is not there.

`what-if` records a run of `--faults` faults without a broker (the service's calls on a
`ClusterState`, agents answering and reporting, an operator clearing monitors), writes it as an
export, and times `mrwbus what-if --history FILE` on it: reading the file and replaying.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import aio_pika
import orjson

from benchmarks.broker import Vhost
from mrwbus.bus.history_reader import fault_story
from mrwbus.bus.history_stream import HistoryOut, encode
from mrwbus.bus.publish_batch import PublishBatch
from mrwbus.bus.topology import declare_history

PER_MESSAGE = 200


def fault_records(number: int, at: datetime) -> list[dict[str, Any]]:
    """A fault and its decision as the service records them; every tenth one a restart and
    its result."""
    fault_id = f"bench-{number:07d}-{'x' * 24}"
    server = f"server{number % 50}"
    when = at.isoformat()
    fault = {
        "id": fault_id,
        "server": server,
        "category": "NIC",
        "device": f"eth{number % 4}",
        "message": "link down",
        "occurred_at": when,
        "state": "error",
    }
    records: list[dict[str, Any]] = [
        {"k": "fault", "at": when, "fault": fault, "sender": f"relay-{server}", "monitors": ["m"]}
    ]
    decision: dict[str, Any] = {
        "k": "decision",
        "at": when,
        "fault_id": fault_id,
        "monitor": "m",
        "server": server,
        "category": "NIC",
        "step": "none: already in Error: the fault is counted, nothing is started",
        "taken": False,
        "status": "Error",
        "restarts": 1,
        "failovers": 0,
    }
    if number % 10 == 0:
        command_id = f"cmd-{number:07d}-{'y' * 24}"
        decision.update(step="restart 1 of 1", taken=True)
        decision["commands"] = [
            {
                "id": command_id,
                "fault_id": fault_id,
                "monitor": "m",
                "server": server,
                "action": "restart",
                "group": "g1",
            }
        ]
        records.append(decision)
        records.append(
            {
                "k": "result",
                "at": when,
                "result": {
                    "id": f"res-{number}",
                    "command_id": command_id,
                    "server": server,
                    "outcome": "succeeded",
                    "detail": "",
                    "finished_at": when,
                },
                "sender": f"agent-{server}",
            }
        )
    else:
        records.append(decision)
    return records


async def show(faults: int) -> None:
    with Vhost("history") as vhost:
        connection = await aio_pika.connect(vhost.url)
        try:
            channel = await connection.channel(publisher_confirms=True)
            await declare_history(channel, timedelta(days=90))
            batch = PublishBatch(await channel.get_underlay_channel(), 60.0)
            out = HistoryOut()
            started = time.monotonic()
            written = 0
            at = datetime.now(UTC)
            window: list[asyncio.Future[Any]] = []
            for first in range(0, faults, PER_MESSAGE):
                records = [
                    record
                    for number in range(first, min(first + PER_MESSAGE, faults))
                    for record in fault_records(number, at)
                ]
                written += len(encode(records))
                out.copy(batch, first, records)  # as the journal hands them over
                confirmation = out.flush()
                assert confirmation is not None
                window.append(confirmation)
                if len(window) >= 50:
                    await asyncio.gather(*window)
                    window = []
            out.close_index(batch)
            await asyncio.gather(*window)
            print(
                f"{faults:,} faults written in {time.monotonic() - started:.1f} s: "
                f"{written / 1e6:,.0f} MB, {written / faults:.0f} bytes per fault "
                f"(one in ten with a command and its result)"
            )
            for label, number in (
                ("the first", 0),
                ("one in the middle", faults // 2 + 7),
                ("one near the end", faults - 3),
                ("a restarted one in the middle", faults // 2 + 10 - (faults // 2) % 10),
            ):
                fault_id = f"bench-{number:07d}-{'x' * 24}"
                started = time.monotonic()
                story = await fault_story(connection, fault_id)
                took = time.monotonic() - started
                assert story.records, fault_id
                print(f"history show, {label}: {took:.3f} s ({len(story.records)} records)")
            started = time.monotonic()
            story = await fault_story(connection, "not-there")
            print(f"history show, a fault not there: {time.monotonic() - started:.3f} s")
        finally:
            await connection.close()


def what_if_figures(faults: int) -> None:
    from mrwbus.cli.history_verbs import load_export
    from mrwbus.operators.what_if import what_if
    from tests.unit.operators.recorded_run import RecordedRun
    from tests.unit.operators.test_what_if import START, configured

    started = time.monotonic()
    # A busy week: a fault every 6 s on average (100,000 faults in about 7 days); agents
    # report every 60 s (RecordedRun's REPORT_EVERY).
    records = RecordedRun(configured(), START, gaps=(0.5, 2, 5, 16)).run(faults)
    print(
        f"recorded {faults:,} faults ({len(records):,} records) in {time.monotonic() - started:.1f} s"
    )
    with TemporaryDirectory() as directory:
        export = Path(directory) / "history.jsonl"
        with export.open("wb") as out:
            for record in records:
                out.write(orjson.dumps(record) + b"\n")
        print(f"export: {export.stat().st_size / 1e6:,.0f} MB")
        for label, config in (("the same", configured()), ("max_restarts 3", configured(3))):
            started = time.monotonic()
            loaded = load_export(export, None)
            report = what_if(config, loaded)
            took = time.monotonic() - started
            print(
                f"what-if --history ({label} configuration): {took:.1f} s, "
                f"{report.faults:,} faults, {len(report.changes)} decisions changed"
            )


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("phase", choices=["show", "what-if"])
    parser.add_argument("--faults", type=int)
    args = parser.parse_args()
    if args.phase == "show":
        asyncio.run(show(args.faults or 1_000_000))
    else:
        what_if_figures(args.faults or 100_000)


if __name__ == "__main__":
    cli()
