"""The load generator, in its own process: publishes faults as a relay would (as the broker user
`relay-server1`, confirmed),
either as fast as the broker confirms them or at an offered rate, and writes when it sent each
one so that the benchmark can measure fault-to-command latency.

    python -m benchmarks.loadgen RELAY_URL FIRST COUNT --monitors M --rate R --prefix P --out FILE
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aio_pika

from benchmarks.broker import RELAY_USER
from mrwbus.bus.publisher import json_message
from mrwbus.bus.topology import FAULTS
from mrwbus.relay import make_fault

WINDOW = 200
"""Faults in flight at once when saturating (unconfirmed publishes)."""


async def generate(args: argparse.Namespace) -> dict[str, float]:
    connection = await aio_pika.connect(args.url, timeout=10)
    sent: dict[str, float] = {}
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(FAULTS, ensure=False)
        started = time.monotonic()
        in_flight: set[asyncio.Future[object]] = set()
        for index in range(args.first, args.first + args.count):
            fault = make_fault(
                args.server,
                "FC",
                f"dev-{index % args.monitors}",
                fault_id=f"{args.prefix}-{index:07d}",
            )
            if args.rate:
                ahead = (index - args.first) / args.rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            elif len(in_flight) >= WINDOW:
                _, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            sent[fault.id] = time.time()
            in_flight.add(
                asyncio.ensure_future(
                    exchange.publish(
                        json_message(fault, user_id=args.user_id or None),
                        fault.routing_key,
                        mandatory=False,
                    )
                )
            )
        if in_flight:
            await asyncio.gather(*in_flight)
    finally:
        await connection.close()
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("first", type=int)
    parser.add_argument("count", type=int)
    parser.add_argument("--monitors", type=int, required=True, help="devices dev-0 .. dev-(M-1)")
    parser.add_argument("--rate", type=float, default=0.0, help="faults per second; 0: saturate")
    parser.add_argument("--prefix", default="f")
    parser.add_argument("--server", default="server1", help="the server the faults are for")
    parser.add_argument(
        "--user-id", default=RELAY_USER, help="the user_id the faults carry ('' for none)"
    )
    parser.add_argument("--out", required=True, help="JSON file: fault id -> time sent")
    args = parser.parse_args()
    sent = asyncio.run(generate(args))
    with open(args.out, "w") as handle:
        json.dump(sent, handle)


if __name__ == "__main__":
    main()
