"""NIC faults from the real kernel: a veth pair, one end in a network namespace."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from mrwbus.messages import Category
from tests.integration.relay.bus import FaultCollector
from tests.integration.relay.conftest import StartRelay
from tests.integration.relay.kernel import VethPair

pytestmark = pytest.mark.broker

DEBOUNCE = 0.5


def nic(veth: VethPair) -> str:
    return f"debounce: {DEBOUNCE}\nnic: {{interfaces: [{veth.host}]}}"


async def test_a_link_down_longer_than_the_debounce_is_one_fault_and_up_one_recovery(
    start_relay: StartRelay, faults: FaultCollector, veth: VethPair
) -> None:
    await start_relay(nic(veth))
    veth.peer_down()
    fault = await faults.next(timeout=5)
    assert (fault.server, fault.category, fault.device, fault.state) == (
        "server1",
        Category.NIC,
        veth.host,
        "error",
    )
    assert "carrier 0" in fault.message
    await faults.nothing_more(quiet=1.5)  # still down: announced once

    veth.peer_up()
    recovered = await faults.next(timeout=5)
    assert (recovered.device, recovered.state) == (veth.host, "recovered")
    assert recovered.occurred_at > fault.occurred_at
    await faults.nothing_more(quiet=1.0)
    assert faults.user_ids == ["guest", "guest"], "user_id is the connection's user"


async def test_a_flap_shorter_than_the_debounce_publishes_nothing(
    start_relay: StartRelay, faults: FaultCollector, veth: VethPair
) -> None:
    relay = await start_relay(nic(veth))
    veth.peer_down()
    await asyncio.sleep(DEBOUNCE / 5)
    veth.peer_up()
    await faults.nothing_more(quiet=DEBOUNCE * 4)
    assert relay.counters.spooled == 0


async def test_a_vlan_on_the_link_is_a_device_of_its_own(
    start_relay: StartRelay, faults: FaultCollector, veth: VethPair
) -> None:
    vlan = veth.host[:-1] + "v"  # removed with the veth it sits on
    made = subprocess.run(
        ["ip", "link", "add", "link", veth.host, "name", vlan, "type", "vlan", "id", "100"],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        pytest.skip(f"this kernel cannot make a VLAN interface (8021q): {made.stderr.strip()}")
    subprocess.run(["ip", "link", "set", vlan, "up"], check=True)
    await start_relay(f"debounce: {DEBOUNCE}\nnic: {{interfaces: [{veth.host}, {vlan}]}}")
    veth.peer_down()
    found = {(fault.device, fault.state) for fault in [await faults.next(5), await faults.next(5)]}
    assert found == {(veth.host, "error"), (vlan, "error")}
    await faults.nothing_more(quiet=1.0)
