"""`simulate` routes a fault as the service does, and explains every destination it passed
over (issue 27, items 6 and 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrwbus import cli
from mrwbus.config.loading import parse_config
from mrwbus.core.matching import MonitorIndex, route_fault
from mrwbus.messages import utc_now
from mrwbus.operators.simulate import build_state, parse_fault_argument, render_simulation, simulate

CONFIG = str(Path(__file__).parents[2] / "config" / "cluster.yaml")


def run(capsys: pytest.CaptureFixture[str], fault: str, state: str = "{}") -> list[str]:
    assert cli.main(["simulate", "--config", CONFIG, "--fault", fault, "--state", state]) == 0
    return capsys.readouterr().out.splitlines()


def test_an_unknown_server_is_dead_lettered_as_the_service_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = run(capsys, '{"server": "s9", "category": "NIC", "device": "eth0"}')
    assert out[1] == (
        "dead-lettered: server 's9' is not in the configuration; nothing happens"
        " (`mrwbus dead replay` once it is configured)"
    )


def test_the_service_and_simulate_share_the_route() -> None:
    # The service's `_on_fault` dead-letters with `route_fault(...).dead_letter`, as here.
    source = (Path(__file__).parents[2] / "mrwbus" / "service" / "service.py").read_text()
    assert "route = route_fault(" in source and "route.dead_letter" in source


def test_an_unmatched_fault_shows_its_event(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, '{"server": "server3", "category": "NIC", "device": "eth0"}')
    assert out[1:] == [
        "matches no monitor: acknowledged, nothing else happens",
        "  event MRW-110: A NIC error for device 'eth0' on server3 matched no monitor.",
    ]


def test_the_help_example_with_alive_as_a_mapping_works(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(
        capsys,
        '{"server": "server1", "category": "NIC", "device": "eth0"}',
        '{"alive": {"server2": false}}',
    )
    assert "  destination of failover1: server3 (server2: not alive)" in out


def test_a_server_in_error_passed_over_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(
        capsys,
        '{"server": "server1", "category": "NIC", "device": "eth0"}',
        '{"monitors": {"mrw1": {"server2": {"status": "Error"}}}}',
    )
    assert (
        "  destination of failover1: server3 (server2: a monitor is in Error there"
        " (exclude_destinations: any_error))"
    ) in out


def test_a_server_without_server_group_is_explained_as_one_of_its_own() -> None:
    config = parse_config(
        "servers: {s1: {server_group: a}, s2: {server_group: a}, s3: {}}\n"
        "groups: {g: {servers: [s1, s2, s3]}}\n"
        "monitors:\n"
        "  m: {category: NIC, recovery: {action: failover, target: g, outside_server_group: true}}\n"
    )
    now = utc_now()
    fault = parse_fault_argument({"server": "s1", "category": "NIC", "device": "eth0"}, now)
    text = render_simulation(simulate(config, fault, build_state(config, {}), now))
    assert (
        "  destination of g: s3 (s2: in the same server group (a);"
        " s3: no server_group, so a server group of its own (not a))"
    ) in text.splitlines()
    assert route_fault(config, MonitorIndex(config), fault, now).monitors == ["m"]
