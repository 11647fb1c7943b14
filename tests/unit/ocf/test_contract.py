"""The OCF contract as values: exit codes, the environment, agent names. No process runs."""

from __future__ import annotations

import pytest

from mrwbus.messages import Outcome
from mrwbus.ocf.contract import (
    AgentName,
    OcfAction,
    ResourceState,
    action_outcome,
    agent_environment,
    exit_name,
    exit_reason,
    group_present,
    monitor_state,
)


@pytest.mark.parametrize(
    ("action", "code", "outcome"),
    [
        (OcfAction.START, 0, Outcome.SUCCEEDED),
        (OcfAction.START, 1, Outcome.FAILED),
        (OcfAction.START, 7, Outcome.FAILED),  # started, yet not running
        (OcfAction.START, 8, Outcome.FAILED),
        (OcfAction.START, None, Outcome.TIMED_OUT),
        (OcfAction.START, -9, Outcome.FAILED),
        (OcfAction.STOP, 0, Outcome.SUCCEEDED),
        (OcfAction.STOP, 7, Outcome.SUCCEEDED),  # already stopped: its job is done
        *((OcfAction.STOP, code, Outcome.FAILED) for code in (1, 2, 3, 4, 5, 6, 8, 9)),
        (OcfAction.STOP, None, Outcome.TIMED_OUT),
    ],
)
def test_start_and_stop_exit_codes_map_to_outcomes(
    action: OcfAction, code: int | None, outcome: Outcome
) -> None:
    assert action_outcome(action, code) is outcome


@pytest.mark.parametrize(
    ("code", "state"),
    [
        (0, ResourceState.RUNNING),
        (8, ResourceState.RUNNING),
        (7, ResourceState.NOT_RUNNING),
        (5, ResourceState.NOT_RUNNING),  # not installed here: it cannot be running here
        *((code, ResourceState.FAILED) for code in (1, 2, 3, 4, 6, 9, 42)),
        (None, ResourceState.UNKNOWN),
        (-15, ResourceState.UNKNOWN),
    ],
)
def test_monitor_exit_codes_map_to_states(code: int | None, state: ResourceState) -> None:
    assert monitor_state(code) is state


R, N, F, U = (
    ResourceState.RUNNING,
    ResourceState.NOT_RUNNING,
    ResourceState.FAILED,
    ResourceState.UNKNOWN,
)


@pytest.mark.parametrize(
    ("states", "present"),
    [
        ([R, R, R], True),
        ([R, N, N], True),  # half up is up: starting it elsewhere could run it twice
        ([N, F, N], True),  # a failed resource is there, broken
        ([N, N, N], False),
        ([N, U, N], None),
        ([U], None),
        ([U, R], True),
        ([], None),
    ],
)
def test_a_group_is_present_where_any_resource_is(
    states: list[ResourceState], present: bool | None
) -> None:
    assert group_present(states) is present


def test_exit_names_say_the_code_and_its_name() -> None:
    assert exit_name(7) == "exit 7 (OCF_NOT_RUNNING)"
    assert exit_name(0) == "exit 0 (OCF_SUCCESS)"
    assert exit_name(99) == "exit 99"
    assert exit_name(-9) == "killed by signal 9"
    assert exit_name(None) == "timed out"


def test_agent_names_take_pacemakers_full_form_too() -> None:
    assert AgentName.parse("heartbeat:IPaddr2") == AgentName("heartbeat", "IPaddr2")
    assert AgentName.parse("ocf:pacemaker:Dummy") == AgentName("pacemaker", "Dummy")
    assert AgentName.parse("heartbeat:IPaddr2").path("/r") == "/r/resource.d/heartbeat/IPaddr2"
    assert str(AgentName.parse("ocf:heartbeat:Dummy")) == "heartbeat:Dummy"
    for bad in ("IPaddr2", "heartbeat:", "a:b:c", "../x:y", "heartbeat:../../bin/sh"):
        with pytest.raises(ValueError, match="not an OCF agent name"):
            AgentName.parse(bad)


def test_the_environment_is_the_ocf_one() -> None:
    env = agent_environment(
        "/usr/lib/ocf",
        AgentName("heartbeat", "IPaddr2"),
        "vip",
        {"ip": "192.0.2.50", "cidr_netmask": 24, "lvs_support": False},
        20.0,
    )
    assert env == {
        "OCF_ROOT": "/usr/lib/ocf",
        "OCF_RA_VERSION_MAJOR": "1",
        "OCF_RA_VERSION_MINOR": "1",
        "OCF_RESOURCE_INSTANCE": "vip",
        "OCF_RESOURCE_TYPE": "IPaddr2",
        "OCF_RESOURCE_PROVIDER": "heartbeat",
        "OCF_RESKEY_CRM_meta_timeout": "20000",
        "OCF_RESKEY_ip": "192.0.2.50",
        "OCF_RESKEY_cidr_netmask": "24",
        "OCF_RESKEY_lvs_support": "false",
    }


def test_the_exit_reason_is_the_agents_last_one() -> None:
    output = "INFO: trying\nocf-exit-reason:first\nERROR: x\nocf-exit-reason: Unable to find nic\n"
    assert exit_reason(output) == "Unable to find nic"
    assert exit_reason("just words\n") is None
