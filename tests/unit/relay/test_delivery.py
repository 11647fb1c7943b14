"""Delivery through a fake `FaultLink`: in order, each fault out of the spool only once confirmed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from mrwbus.bus.connection import url_list
from mrwbus.messages import FaultNotification
from mrwbus.relay.delivery import Delivery, LinkBody
from mrwbus.relay.spool import Spool
from tests.unit.relay.test_spool import fault


def broker_urls(url: str) -> list[str]:
    return url_list(url, shuffle=True)


class RetryAtOnce:
    """`Links` for a test: a new link at once after each one lost (the session runner's
    back-off is tested with the broker)."""

    def __init__(self, open_link: Callable[[], Awaitable[FlakyLink]]) -> None:
        self.open_link = open_link

    async def run(self, stop: asyncio.Event, body: LinkBody) -> None:
        while not stop.is_set():
            try:
                await body(await self.open_link())
            except ConnectionError:
                continue


class FlakyLink:
    """Confirms every fault except that the broker goes away once, on `fail_on`."""

    def __init__(self, sent: list[str], fail_on: str | None) -> None:
        self.sent = sent
        self.fail_on = fail_on

    async def publish(self, fault: FaultNotification) -> None:
        if fault.id == self.fail_on:
            self.fail_on = None
            raise ConnectionError("broker went away")
        self.sent.append(fault.id)

    async def close(self) -> None:
        pass

    def is_open(self) -> bool:
        return True

    async def idle(self, until: asyncio.Event) -> None:
        await until.wait()

    def proven(self) -> None:
        pass


async def test_a_lost_broker_resends_from_the_oldest_unconfirmed_fault(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "server1.spool")
    for number in (1, 2, 3):
        spool.add(fault(number))
    sent: list[str] = []
    links: list[FlakyLink] = []

    async def open_link() -> FlakyLink:
        links.append(FlakyLink(sent, "fault-2" if not links else None))
        return links[-1]

    delivery = Delivery(spool, RetryAtOnce(open_link))
    stop = asyncio.Event()
    task = asyncio.create_task(delivery.run(stop))
    while spool.pending:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert sent == ["fault-1", "fault-2", "fault-3"]
    assert len(links) == 2
    assert delivery.status.confirmed == 3
    assert delivery.status.last_error == "lost the broker: broker went away"


def test_several_broker_urls_are_all_kept() -> None:
    urls = broker_urls("amqp://a:5672/, amqp://b:5672/,amqp://c:5672/")
    assert sorted(urls) == ["amqp://a:5672/", "amqp://b:5672/", "amqp://c:5672/"]
    assert broker_urls("amqp://guest:guest@localhost/") == ["amqp://guest:guest@localhost/"]
