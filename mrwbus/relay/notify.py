"""Publishing one fault exactly as a driver relay does; `mrwbus notify` and the tests use it."""

from __future__ import annotations

from aiormq.exceptions import PublishError

from mrwbus.bus.connection import Urls, connect_any, connection_user
from mrwbus.bus.publisher import Publisher
from mrwbus.bus.topology import FAULTS, declare_exchanges
from mrwbus.errors import ServiceError
from mrwbus.messages import Category, FaultNotification, new_id, utc_now


def make_fault(
    server: str,
    category: Category | str,
    device: str,
    message: str = "",
    *,
    state: str = "error",
    fault_id: str | None = None,
) -> FaultNotification:
    return FaultNotification.model_validate(
        {
            "id": fault_id or new_id(),
            "server": server,
            "category": category,
            "device": device,
            "message": message,
            "occurred_at": utc_now(),
            "state": state,
        }
    )


async def publish_fault(url: Urls, fault: FaultNotification) -> None:
    """Publish to `mrwbus.faults` and wait for the broker's confirm."""
    connection = await connect_any(url, "mrwbus-notify")
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchanges = await declare_exchanges(channel)
        try:
            publisher = Publisher(channel, exchanges, user_id=connection_user(channel))
            await publisher.publish(FAULTS, fault.routing_key, fault)
        except PublishError as exc:
            raise ServiceError(
                "no queue takes faults yet: start the service once (mrwbus run) so it declares mrwbus.faults"
            ) from exc
    finally:
        await connection.close()
