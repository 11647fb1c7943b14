"""The baseline: a bare aio-pika relay with nothing but the delivery guarantee. It consumes a
fault, parses it, publishes one command with a publisher confirm and then acks, one message at a
time per delivery (prefetch as the service's). No journal, no state, no idempotency: the ceiling
for any service that must confirm what it publishes before it acks.

    python -m benchmarks.bare_relay URL
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from mrwbus.bus.publisher import json_message
from mrwbus.bus.topology import COMMANDS, declare_service_topology
from mrwbus.config.settings import ServiceSettings
from mrwbus.messages import Action, FaultNotification, RecoveryCommand, derived_id, utc_now

PREFETCH = ServiceSettings().prefetch


async def relay(url: str) -> None:
    connection = await aio_pika.connect(url, timeout=10)
    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=PREFETCH)
    topology = await declare_service_topology(channel, ["server1"])
    commands = topology.exchanges[COMMANDS]

    async def on_fault(message: AbstractIncomingMessage) -> None:
        fault = FaultNotification.model_validate_json(message.body)
        command = RecoveryCommand(
            id=derived_id(fault.id, "bare"),
            fault_id=fault.id,
            monitor="bare",
            server=fault.server,
            action=Action.RESTART,
            group="g1",
            issued_at=utc_now(),
        )
        await commands.publish(json_message(command), command.routing_key, mandatory=True)
        await message.ack()

    await topology.faults.consume(on_fault)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    asyncio.run(relay(parser.parse_args().url))


if __name__ == "__main__":
    main()
