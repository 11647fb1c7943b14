"""The ceiling for a failover: a bare aio-pika script that does the four hops with nothing but
the delivery guarantee. A fault for `failover-<i>` on a server sends the stop of group `g-<i>`
to that server's agent; the stop's success sends the start to the other server; the start's
success publishes the MRW-320 event. Every publish is confirmed before its input is acked.
No journal, no state machine, no idempotency, no deadlines: what any service must at least do.

Background faults (any other device) get one restart command each, as the bare relay's do.

    python -m benchmarks.bare_failover URL
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage

from mrwbus.bus.publisher import json_message
from mrwbus.bus.topology import COMMANDS, EVENTS, declare_service_topology
from mrwbus.config.settings import ServiceSettings
from mrwbus.core import events
from mrwbus.messages import (
    Action,
    CommandResult,
    CommandStep,
    EventBatch,
    FaultNotification,
    Outcome,
    RecoveryCommand,
    derived_id,
    utc_now,
)

PREFETCH = ServiceSettings().prefetch
SERVERS = ("server1", "server2")
FAILOVER_DEVICE = "failover-"


@dataclass(frozen=True)
class Step:
    fault: FaultNotification
    monitor: str
    group: str
    source: str
    destination: str


def command(step: Step, which: CommandStep) -> RecoveryCommand:
    server = step.source if which is CommandStep.STOP else step.destination
    return RecoveryCommand(
        id=derived_id(step.fault.id, step.monitor, which.value),
        fault_id=step.fault.id,
        monitor=step.monitor,
        server=server,
        action=Action.FAILOVER,
        group=step.group,
        step=which,
        from_server=step.source,
        to_server=step.destination,
        issued_at=utc_now(),
    )


class BareFailover:
    def __init__(self, commands: AbstractExchange, event_exchange: AbstractExchange) -> None:
        self.commands = commands
        self.events = event_exchange
        self.waiting: dict[str, tuple[Step, CommandStep]] = {}
        """Command id -> the failover it belongs to and its step."""

    async def send(self, step: Step, which: CommandStep) -> None:
        sent = command(step, which)
        self.waiting[sent.id] = (step, which)
        await self.commands.publish(json_message(sent), sent.routing_key, mandatory=True)

    async def on_fault(self, message: AbstractIncomingMessage) -> None:
        fault = FaultNotification.model_validate_json(message.body)
        if fault.device.startswith(FAILOVER_DEVICE):
            index = fault.device.removeprefix(FAILOVER_DEVICE)
            other = next(server for server in SERVERS if server != fault.server)
            step = Step(fault, f"failover-{index}", f"g-{index}", fault.server, other)
            await self.send(step, CommandStep.STOP)
        else:
            restart = RecoveryCommand(
                id=derived_id(fault.id, "bare"),
                fault_id=fault.id,
                monitor="bare",
                server=fault.server,
                action=Action.RESTART,
                group="background",
                issued_at=utc_now(),
            )
            await self.commands.publish(json_message(restart), restart.routing_key, mandatory=True)
        await message.ack()

    async def on_result(self, message: AbstractIncomingMessage) -> None:
        if (message.routing_key or "").endswith(".report"):
            await message.ack()
            return
        result = CommandResult.model_validate_json(message.body)
        found = self.waiting.pop(result.command_id, None)
        if found is not None and result.outcome is Outcome.SUCCEEDED:
            step, which = found
            if which is CommandStep.STOP:
                await self.send(step, CommandStep.START)
            else:
                done = events.FAILOVER_DONE.make(
                    at=utc_now(),
                    cause=step.fault.id,
                    monitor=step.monitor,
                    server=step.source,
                    fault_id=step.fault.id,
                    group=step.group,
                    to_server=step.destination,
                )
                batch = EventBatch.of([done])
                await self.events.publish(json_message(batch), batch.routing_key)
        await message.ack()


async def serve(url: str) -> None:
    connection = await aio_pika.connect(url, timeout=10)
    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=PREFETCH)
    topology = await declare_service_topology(channel, [*SERVERS, "server3"])
    bare = BareFailover(topology.exchanges[COMMANDS], topology.exchanges[EVENTS])
    await topology.results.consume(bare.on_result)
    await topology.faults.consume(bare.on_fault)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    asyncio.run(serve(parser.parse_args().url))


if __name__ == "__main__":
    main()
