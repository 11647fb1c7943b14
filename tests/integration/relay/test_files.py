"""Kernel-log patterns on a followed file, FC from a sysfs tree the test builds, exec sources."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from mrwbus.messages import Category
from tests.integration.relay.bus import FaultCollector
from tests.integration.relay.conftest import StartRelay

pytestmark = pytest.mark.broker

MULTIPATH = r"device-mapper: multipath:(?: \S+:)? Failing path (?P<device>\d+:\d+)"


async def test_a_line_appended_to_a_followed_log_is_an_sps_fault(
    start_relay: StartRelay, faults: FaultCollector, tmp_path: Path
) -> None:
    log = tmp_path / "kern.log"
    log.write_text("kernel: device-mapper: multipath: 253:1: Failing path 8:16.\n")  # old news
    await start_relay(
        f"""
        logs:
          kern:
            path: {log}
            patterns:
              - {{name: multipath-path-failed, category: SPS, regex: '{MULTIPATH}'}}
        """
    )
    with log.open("a") as out:
        out.write("Nov 25 20:31:07 server1 kernel: eth0: link up\n")
        out.write(
            "Nov 25 20:31:08 server1 kernel: device-mapper: multipath: 253:3: Failing path 8:48.\n"
        )
    fault = await faults.next(timeout=5)
    assert (fault.category, fault.device, fault.state) == (Category.SPS, "8:48", "error")
    assert fault.message.startswith("multipath-path-failed: Nov 25 20:31:08")
    await faults.nothing_more(quiet=1.0)


def fc_host(root: Path, host: str, state: str) -> None:
    folder = root / "class" / "fc_host" / host
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "port_state").write_text(f"{state}\n")


async def test_an_fc_host_going_linkdown_is_a_fault_and_online_a_recovery(
    start_relay: StartRelay, faults: FaultCollector, tmp_path: Path
) -> None:
    sysfs = tmp_path / "sys"
    fc_host(sysfs, "host3", "Online")
    fc_host(sysfs, "host4", "Online")
    await start_relay(f"debounce: 0.3\nfc: {{sysfs: {sysfs}, poll: 0.1}}")
    fc_host(sysfs, "host3", "Linkdown")
    fault = await faults.next(timeout=5)
    assert (fault.category, fault.device, fault.state) == (Category.FC, "host3", "error")
    assert "Linkdown" in fault.message
    await faults.nothing_more(quiet=1.0)
    fc_host(sysfs, "host3", "Online")
    recovered = await faults.next(timeout=5)
    assert (recovered.device, recovered.state) == ("host3", "recovered")


async def test_an_exec_source_is_read_and_restarted_when_it_exits(
    start_relay: StartRelay, faults: FaultCollector, tmp_path: Path
) -> None:
    program = tmp_path / "watcher.sh"
    program.write_text(
        "echo 'not json'\n"
        """echo '{"category": "HA/AM", "device": "app1", "message": "app1 hung"}'\n"""
    )
    relay = await start_relay(
        f"exec: {{watcher: {{run: 'sh {program}', restart_min: 0.2, restart_max: 1}}}}"
    )
    first, second = await faults.next(timeout=5), await faults.next(timeout=5)
    assert (first.category, first.device, first.message) == (Category.HA_AM, "app1", "app1 hung")
    assert second.id != first.id, "each line printed is a notification of its own"
    assert relay.counters.seen["exec.watcher"] >= 2


async def test_a_kernel_message_in_dev_kmsg_is_a_fault(
    start_relay: StartRelay, faults: FaultCollector
) -> None:
    kmsg = Path("/dev/kmsg")
    if not os.access(kmsg, os.W_OK):
        pytest.skip("writing a kernel message needs root (/dev/kmsg is not writable)")
    # A marker of this test's own, so that no other message of the kernel can match.
    marker = f"mrwbus-test-{uuid.uuid4().hex[:8]}"
    await start_relay(
        f"""
        logs:
          kernel:
            path: /dev/kmsg
            patterns:
              - {{name: test, category: SPS, regex: '{marker}: {MULTIPATH}'}}
        """
    )
    kmsg.write_text(f"{marker}: device-mapper: multipath: 253:3: Failing path 8:48.\n")
    fault = await faults.next(timeout=5)
    assert (fault.category, fault.device) == (Category.SPS, "8:48")
    assert marker in fault.message
