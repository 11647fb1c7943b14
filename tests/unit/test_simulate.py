"""`mrwbus simulate`: the service's decision, printed as it is, with no broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrwbus import cli
from mrwbus.config.loading import parse_config
from mrwbus.core import operator_verbs
from mrwbus.core.cluster import ClusterState
from mrwbus.operators.simulate import render_simulation, simulate
from mrwbus.relay import make_fault
from tests.scenarios import ladder
from tests.unit.operate import operate

from .conftest import T0

CLUSTER = """
servers:
  server1: {server_group: site-a}
  server2: {server_group: site-a}
groups:
  failover1: {servers: [server1, server2], resources: [app1]}
monitors:
  mrw1:
    category: NIC
    keyword: eth0
    recovery: {action: restart, target: failover1, max_restarts: 5}
  mrw2:
    category: FC
    recovery: {action: restart, target: app1}
"""


def test_simulate_needs_no_broker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text(CLUSTER)
    fault = '{"server": "server1", "category": "NIC", "device": "eth0"}'
    state = '{"monitors": {"mrw1": {"server1": {"restarts": 5}}}}'
    code = cli.main(["simulate", "--config", str(config), "--fault", fault, "--state", state])
    out = capsys.readouterr().out
    assert code == 0
    assert "mrw1 on server1: Normal -> Error" in out
    assert "ladder step: final action none (restarts used up: 5 of 5)" in out
    assert "command ->" not in out


def test_the_scenario_shows_each_case_the_service_handles() -> None:
    found = ladder.simulated(parse_config(ladder.CONFIG, "scenario.yaml"), T0)
    for fault_id, code in ladder.EXPECTED_CODES.items():
        assert code in [event.code for event in found[fault_id]], (fault_id, found[fault_id])
    assert all(
        event.code != "MRW-201" for fault_id in ("s-3", "s-4", "s-5") for event in found[fault_id]
    )


@pytest.mark.parametrize(
    ("state", "fault", "step"),
    [
        ({"suspended": ["mrw1"]}, ("server1", "NIC", "eth0"), "none: the monitor is suspended"),
        ({}, ("server2", "NIC", "eth0"), "none: the target is not active on this server"),
        ({}, ("server1", "NIC", "eth0"), "restart 1 of 5"),
        (
            {"monitors": {"mrw1": {"server1": {"status": "Error"}}}},
            ("server1", "NIC", "eth0"),
            "none: already in Error",
        ),
    ],
)
def test_the_ladder_step_is_the_one_the_decision_took(
    state: dict[str, object], fault: tuple[str, str, str], step: str
) -> None:
    from mrwbus.operators.simulate import build_state

    config = parse_config(CLUSTER, "cluster.yaml")
    cluster = build_state(config, state)
    out = render_simulation(simulate(config, make_fault(*fault), cluster, T0))
    assert f"ladder step: {step}" in out
    if not step.startswith("restart"):
        assert "restart 1 of" not in out and "command ->" not in out


def test_expired_counts_show_their_event() -> None:
    config = parse_config(ladder.CONFIG, "scenario.yaml")
    cluster = ClusterState.for_config(config)
    simulate(config, make_fault("server1", "NIC", "eth0"), cluster, T0)
    operate(
        cluster,
        operator_verbs.clear,
        "expiring",
        "server1",
        reset_counts=False,
        by="test",
        now=T0,
        cause="c",
    )
    later = T0 + config.monitors["expiring"].recovery.reset_counts_after * 2  # type: ignore[operator]
    out = render_simulation(simulate(config, make_fault("server1", "NIC", "eth0"), cluster, later))
    assert "event MRW-403" in out
    assert "ladder step: restart 1 of 1" in out


def test_repeats_in_error_show_when_they_are_counted_for_a_summary() -> None:
    from datetime import timedelta

    config = parse_config(CLUSTER, "cluster.yaml")
    cluster = ClusterState.for_config(config)
    for _ in range(3):  # Error, the first repeat reported, the next counted quietly
        out = render_simulation(simulate(config, make_fault("server1", "NIC", "eth0"), cluster, T0))
    assert "  event " not in out
    assert "1 unreported fault(s) go into the next summary (MRW-106)" in out
    later = T0 + timedelta(seconds=11)
    out = render_simulation(simulate(config, make_fault("server1", "NIC", "eth0"), cluster, later))
    assert "event MRW-106: mrw1: 2 more errors on server1 in the last 11 s" in out
