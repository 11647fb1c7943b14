"""Which monitors a fault concerns: category, server, and that server's keyword."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from mrwbus.config.model import ClusterConfig
from mrwbus.core.matching import MonitorIndex
from mrwbus.messages import Category


@pytest.fixture(scope="module")
def index(config: ClusterConfig) -> MonitorIndex:
    return MonitorIndex(config)


@pytest.mark.parametrize(
    ("server", "category", "device", "expected"),
    [
        # mrw1: NIC eth0 in common, eth1 on server2, server3 not watched
        ("server1", Category.NIC, "eth0", ["mrw1"]),
        ("server1", Category.NIC, "eth1", []),
        ("server2", Category.NIC, "eth1", ["mrw1"]),
        ("server2", Category.NIC, "eth0", []),
        ("server3", Category.NIC, "eth0", []),
        # mrw2: FC, empty keyword: any device, every server
        ("server1", Category.FC, "hba0", ["mrw2"]),
        ("server3", Category.FC, "whatever", ["mrw2"]),
        ("server2", Category.FC, "", ["mrw2"]),
        # mrw3: HA/SS sdb on every server
        ("server3", Category.HA_SS, "sdb", ["mrw3"]),
        ("server3", Category.HA_SS, "sdc", []),
        ("server3", Category.HA_SS, "SDB", []),  # exact match, case included
        ("server3", Category.HA_SS, "sdb ", []),
        # the category decides even when the device would match
        ("server1", Category.HA_AM, "eth0", []),
        ("server1", Category.HA_AM, "app", ["mrw4"]),
        ("server2", Category.SPS, "dd0", ["mrw5"]),
        ("server2", Category.HA_RS, "memory", ["mrw6"]),
        # a server the cluster does not know
        ("server9", Category.FC, "hba0", []),
    ],
)
def test_match(
    index: MonitorIndex, server: str, category: Category, device: str, expected: list[str]
) -> None:
    assert index.match(server, category, device) == expected


def test_several_monitors_match_in_configuration_order() -> None:
    config = ClusterConfig.model_validate(
        {
            "servers": {"s1": None, "s2": None},
            "monitors": {
                "b-any": monitor("NIC", ""),
                "a-eth0": monitor("NIC", "eth0"),
                "c-eth1": monitor("NIC", "eth1"),
                "d-eth0-on-s2": monitor("NIC", "eth9", servers={"s2": {"keyword": "eth0"}}),
            },
        }
    )
    index = MonitorIndex(config)
    assert index.match("s1", Category.NIC, "eth0") == ["b-any", "a-eth0"]
    assert index.match("s2", Category.NIC, "eth0") == ["b-any", "a-eth0", "d-eth0-on-s2"]
    assert index.match("s2", Category.NIC, "eth9") == ["b-any"]


def test_empty_per_server_keyword_matches_any_device_there() -> None:
    config = ClusterConfig.model_validate(
        {
            "servers": {"s1": None, "s2": None},
            "monitors": {"m": monitor("FC", "hba0", servers={"s1": {"keyword": ""}, "s2": {}})},
        }
    )
    index = MonitorIndex(config)
    assert index.match("s1", Category.FC, "hba7") == ["m"]
    assert index.match("s2", Category.FC, "hba7") == []
    assert index.match("s2", Category.FC, "hba0") == ["m"]


def test_monitor_with_empty_servers_map_watches_nothing() -> None:
    config = ClusterConfig.model_validate(
        {"servers": {"s1": None}, "monitors": {"m": monitor("FC", "", servers={})}}
    )
    assert MonitorIndex(config).match("s1", Category.FC, "hba0") == []


# --- property: the index agrees with a brute-force reading of the configuration ---------------

SERVERS = ["s1", "s2", "s3", "s4"]
DEVICES = ["", "eth0", "eth1", "é0"]


def monitor(category: str, keyword: str, servers: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "category": category,
        "keyword": keyword,
        "recovery": {"action": "final_action", "target": "all_groups"},
    }
    if servers is not None:
        body["servers"] = servers
    return body


CATEGORIES = [c.value for c in Category]
PER_SERVER = [None, {}, *({"keyword": device} for device in DEVICES)]
"""A monitor's per-server entry: `server:`, `server: {}`, or a keyword override."""


def decode_config(server_bits: int, monitor_codes: list[int]) -> dict[str, Any]:
    """A raw configuration from a few numbers: cheap to draw, simple to shrink."""
    servers = [server for bit, server in enumerate(SERVERS) if server_bits >> bit & 1]
    monitors = {}
    for number, code in enumerate(monitor_codes, 1):
        code, category = divmod(code, len(CATEGORIES))
        code, keyword = divmod(code, len(DEVICES))
        code, listed = divmod(code, 3)
        per_server: dict[str, Any] | None = None
        if listed:  # 0: no `servers` map, watch every server
            per_server = {}
            for server in servers:
                code, choice = divmod(code, 3 + len(PER_SERVER))
                if choice >= 3:  # 0-2: not listed, so not watched
                    per_server[server] = PER_SERVER[choice - 3]
        monitors[f"mrw{number}"] = monitor(CATEGORIES[category], DEVICES[keyword], per_server)
    return {"servers": dict.fromkeys(servers), "monitors": monitors}


def brute_force(raw: dict[str, Any], server: str, category: Category, device: str) -> list[str]:
    """The monitors a fault matches, read straight from the raw configuration."""
    found = []
    for name, body in raw["monitors"].items():
        if body["category"] != category.value:
            continue
        per_server = body.get("servers")
        watched = list(raw["servers"]) if per_server is None else list(per_server)
        if server not in watched:
            continue
        keyword = body["keyword"]
        tab = (per_server or {}).get(server)
        if tab and tab.get("keyword") is not None:
            keyword = tab["keyword"]
        if keyword == "" or keyword == device:
            found.append(name)
    return found


@settings(max_examples=200, deadline=None)
@given(
    server_bits=st.integers(1, 2 ** len(SERVERS) - 1),
    monitor_codes=st.lists(st.integers(0, 2**40), max_size=6),
    fault_codes=st.lists(st.integers(0, 2**12), min_size=1, max_size=10),
)
def test_index_agrees_with_brute_force(
    server_bits: int, monitor_codes: list[int], fault_codes: list[int]
) -> None:
    raw = decode_config(server_bits, monitor_codes)
    note(repr(raw))
    index = MonitorIndex(ClusterConfig.model_validate(raw))
    categories = list(Category)
    for code in fault_codes:
        code, server = divmod(code, len(SERVERS) + 1)  # + a server the cluster does not know
        code, category = divmod(code, len(categories))
        device = [*DEVICES, "eth2"][code % (len(DEVICES) + 1)]
        fault = ([*SERVERS, "s9"][server], categories[category], device)
        assert index.match(*fault) == brute_force(raw, *fault), fault
