"""The broker says no: a routing key the relay's user may not write, a topology it may not
declare, a wrong password. The relay never stops for it: the fault stays spooled, the reason is
logged and shown in /healthz and /metrics, the relay tries again with back-off, and once the
broker allows it the fault goes out exactly once, with no restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from yarl import URL

from mrwbus.relay.daemon import Relay
from mrwbus.relay.registry import for_server, parse_config
from mrwbus.relay.relay_http import families, health
from tests.integration.broker import _management
from tests.integration.relay.bus import FaultCollector
from tests.integration.relay.conftest import relay_yaml

pytestmark = pytest.mark.broker


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
def relay_user(amqp_url: str) -> Iterator[tuple[str, str]]:
    """A user of the test's vhost who may write to `mrwbus.faults` (no configure, no read), with
    no routing key allowed yet: (its URL, the vhost)."""
    vhost = URL(amqp_url).path.lstrip("/")
    user = f"relay-{uuid.uuid4().hex[:8]}"
    _management("PUT", f"/users/{user}", {"password": "secret", "tags": ""})
    try:
        _management(
            "PUT",
            f"/permissions/{vhost}/{user}",
            {"configure": "^$", "write": "^mrwbus\\.faults$", "read": "^$"},
        )
        yield str(URL(amqp_url).with_user(user).with_password("secret")), vhost
    finally:
        with contextlib.suppress(Exception):
            _management("DELETE", f"/users/{user}")


def allow_keys(url: str, vhost: str, write: str) -> None:
    """`rabbitmqctl set_topic_permissions` through the management API."""
    user = URL(url).user
    _management(
        "PUT",
        f"/topic-permissions/{vhost}/{user}",
        {"exchange": "mrwbus.faults", "write": write, "read": ".*"},
    )


@contextlib.asynccontextmanager
async def running_relay(url: str, tmp_path: Path, log: Path) -> AsyncIterator[Relay]:
    section = f"logs: {{app: {{path: {log}, patterns: [{{name: hung, category: HA/AM, regex: '(?P<device>app\\d+) hung'}}]}}}}"
    config = parse_config(relay_yaml(section, tmp_path), "test.yaml")
    relay = Relay(for_server(config.relay, "server1"), url)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await wait_for(lambda: all(relay.running.values()), "the source running")
        await asyncio.sleep(0.3)  # the file source reads from the end it found at start
        yield relay
        assert not task.done(), "the relay stopped by itself"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def spool_ids(relay: Relay) -> list[str]:
    return [fault.id for fault in relay.spool.pending]


async def test_a_refused_routing_key_keeps_the_fault_and_delivers_it_once_granted(
    amqp_url: str,
    faults: FaultCollector,
    relay_user: tuple[str, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, vhost = relay_user
    allow_keys(url, vhost, "^nobody$")
    log = tmp_path / "app.log"
    log.write_text("")
    caplog.set_level(logging.WARNING, logger="mrwbus")
    async with running_relay(url, tmp_path, log) as relay:
        with log.open("a") as out:
            out.write("app7 hung\n")
        await wait_for(lambda: len(spool_ids(relay)) == 1, "the fault in the spool")
        [spooled] = spool_ids(relay)
        # Refused, and tried again (the back-off's first waits are 0.2, 0.4, 0.8 s).
        await wait_for(lambda: relay.delivery.status.attempts_failed >= 3, "three refusals")
        assert spool_ids(relay) == [spooled]
        assert faults.seen == []
        status, body = health(relay)
        assert status == 503
        assert "refused" in (body["last_error"] or ""), body
        assert "ACCESS_REFUSED" in (body["last_error"] or ""), body
        assert any(
            "refused" in r.getMessage() and "spooled" in r.getMessage() for r in caplog.records
        )
        metrics = {family.name: family for family in families(relay)}
        [sample] = metrics["mrwbus_relay_delivery_failures"].samples
        assert sample.value >= 3

        allow_keys(url, vhost, "^server1\\.[^.]+$")  # granted while the relay runs

        fault = await faults.next(timeout=15)
        assert fault.id == spooled
        await wait_for(lambda: spool_ids(relay) == [], "an empty spool")
        await faults.nothing_more(quiet=1.5)
        await wait_for(lambda: health(relay)[0] == 200, "a healthy relay")
    assert [f.id for f in faults.seen] == [spooled]
    assert faults.user_ids == [URL(url).user]


async def test_a_missing_topology_is_retried_with_backoff_until_it_exists(
    amqp_url: str, relay_user: tuple[str, str], tmp_path: Path
) -> None:
    url, vhost = relay_user
    allow_keys(url, vhost, "^server1\\.[^.]+$")
    log = tmp_path / "app.log"
    log.write_text("")
    async with running_relay(url, tmp_path, log) as relay:
        with log.open("a") as out:
            out.write("app3 hung\n")
        await wait_for(lambda: len(spool_ids(relay)) == 1, "the fault in the spool")
        [spooled] = spool_ids(relay)
        # May not declare the exchanges: each session is refused, and the runner tries again
        # after 0.2, 0.4, 0.8 s..., not once in minutes.
        await wait_for(lambda: relay.health.outages >= 3, "three attempts", timeout=20)
        assert "topology is missing" in (relay.health.last_error or "")
        assert health(relay)[0] == 503

        async with FaultCollector.open(amqp_url) as faults:  # declares the topology, binds
            fault = await faults.next(timeout=15)
            assert fault.id == spooled
            await faults.nothing_more(quiet=1.0)
        await wait_for(lambda: spool_ids(relay) == [], "an empty spool")


async def test_a_wrong_password_shows_unhealthy_at_once_with_nothing_to_send(
    amqp_url: str, tmp_path: Path
) -> None:
    wrong = str(URL(amqp_url).with_password("not-the-password"))
    log = tmp_path / "app.log"
    log.write_text("")
    async with running_relay(wrong, tmp_path, log) as relay:
        await wait_for(lambda: relay.health.last_error is not None, "an attempt to log in")
        status, body = health(relay)
        assert status == 503
        assert body["spooled"] == 0
        assert "ACCESS_REFUSED" in body["last_error"] or "auth" in body["last_error"].lower()
