"""Kernel-log lines against patterns, including the ones shipped in config/cluster.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrwbus.messages import Category
from mrwbus.relay.patterns import CompiledPattern, PatternConfig, kmsg_text, match_line
from mrwbus.relay.registry import for_server, load_config

REPO = Path(__file__).resolve().parents[3]


def pattern(regex: str, **fields: object) -> CompiledPattern:
    return CompiledPattern.of(
        PatternConfig.model_validate({"name": "p", "category": "SPS", "regex": regex, **fields})
    )


def test_kmsg_records_lose_their_prefix_and_continuation_lines() -> None:
    record = (
        "4,1234,5678901,-;device-mapper: multipath: 253:3: Failing path 8:48.\n SUBSYSTEM=block\n"
    )
    assert kmsg_text(record) == "device-mapper: multipath: 253:3: Failing path 8:48."
    assert kmsg_text("a plain syslog line") == "a plain syslog line"


def test_the_device_comes_from_the_named_group_with_its_prefix() -> None:
    patterns = [
        pattern(r"multipath: \S+: Failing path (?P<device>\d+:\d+)"),
        pattern(r"-[0-9a-f]+:(?P<dev>\d+): LOOP DOWN", device_group="dev", device_prefix="host"),
    ]
    [hit] = match_line(patterns, "device-mapper: multipath: 253:3: Failing path 8:48.")
    assert (hit.device, hit.category, hit.state) == ("8:48", Category.SPS, "error")
    [fc] = match_line(patterns, "qla2xxx [0000:81:00.0]-500b:3: LOOP DOWN detected (2 7 0 0).")
    assert fc.device == "host3"
    assert match_line(patterns, "eth0: link up") == []


def test_an_optional_group_that_took_no_part_names_no_device() -> None:
    assert match_line([pattern(r"path( (?P<device>\w+))? failed")], "path failed") == []


EXAMPLES = {
    "device-mapper: multipath: 253:3: Failing path 8:48.": ("SPS", "8:48", "error"),
    "device-mapper: multipath: 253:3: Reinstating path 8:48.": ("SPS", "8:48", "recovered"),
    "ixgbe 0000:03:00.0 eth2: Reset adapter": ("NIC", "eth2", "error"),
    "e1000e 0000:00:19.0 eth0: Detected Hardware Unit Hang:": ("NIC", "eth0", "error"),
    "NETDEV WATCHDOG: eth1 (ixgbe): transmit queue 3 timed out": ("NIC", "eth1", "error"),
    "qla2xxx [0000:81:00.0]-500b:3: LOOP DOWN detected (2 7 0 0).": ("FC", "host3", "error"),
    "qla2xxx [0000:81:00.0]-500a:3: LOOP UP detected (8 Gbps).": ("FC", "host3", "recovered"),
    "lpfc 0000:04:00.0: 1:1305 Link Down Event x2 received Data: x2 x20 x800110 x0 x0": (
        "FC",
        "0000:04:00.0",
        "error",
    ),
}


@pytest.mark.parametrize("line", list(EXAMPLES))
def test_the_shipped_examples_match_real_kernel_messages(line: str) -> None:
    relay = for_server(load_config(REPO / "config" / "cluster.yaml").relay, "server1")
    assert relay.logs is not None
    patterns = [CompiledPattern.of(p) for source in relay.logs.values() for p in source.patterns]
    hits = match_line(patterns, line)
    assert [(h.category.value, h.device, h.state) for h in hits] == [EXAMPLES[line]]


def test_the_docs_show_the_same_patterns_as_the_example_configuration() -> None:
    relay = for_server(load_config(REPO / "config" / "cluster.yaml").relay, "server1")
    docs = (REPO / "docs" / "relay.md").read_text()
    assert relay.logs is not None
    for source in relay.logs.values():
        for configured in source.patterns:
            assert f"name: {configured.name}" in docs, configured.name
            assert configured.regex in docs, configured.name
