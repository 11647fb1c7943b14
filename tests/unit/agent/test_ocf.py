"""The OCF group handlers' order and what they do on a failure, with agents that only record
what they were asked (no process runs)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from mrwbus.agent.ocf import OcfGroupHandler, OcfGroupProbe
from mrwbus.agent.ocf_resources import OcfResource, OcfRun
from mrwbus.messages import Outcome
from mrwbus.ocf.contract import AgentName, OcfAction


@dataclass(frozen=True)
class Recording(OcfResource):
    """Answers each action with the code given for it (default 0) and records it."""

    codes: dict[str, int | None] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    async def run(self, action: OcfAction) -> OcfRun:
        self.log.append(f"{self.name} {action.value}")
        code = self.codes.get(action.value, 0)
        output = "ocf-exit-reason:it broke\n" if code else ""
        return OcfRun(self.name, action, code, output)


def group(log: list[str], **codes: dict[str, int | None]) -> list[OcfResource]:
    return [
        Recording(name, AgentName("heartbeat", "Dummy"), "/r", {}, {}, codes.get(name, {}), log)
        for name in ("vip", "data", "postgres")
    ]


async def test_a_stop_goes_in_reverse_and_ends_at_the_first_failure() -> None:
    log: list[str] = []
    result = await OcfGroupHandler("failover.stop", "pg", group(log, data={"stop": 1})).run()
    assert log == ["postgres stop", "data stop"]
    assert result.outcome is Outcome.FAILED
    assert result.detail.splitlines() == [
        "postgres stop: exit 0 (OCF_SUCCESS)",
        "data stop: exit 1 (OCF_ERR_GENERIC): it broke",
        "not stopped, since data did not stop: vip",
    ]


async def test_a_stop_that_finds_a_resource_stopped_succeeds() -> None:
    log: list[str] = []
    result = await OcfGroupHandler("failover.stop", "pg", group(log, vip={"stop": 7})).run()
    assert result.outcome is Outcome.SUCCEEDED
    assert log == ["postgres stop", "data stop", "vip stop"]


async def test_a_failed_start_stops_again_what_it_began() -> None:
    log: list[str] = []
    result = await OcfGroupHandler("failover.start", "pg", group(log, data={"start": 1})).run()
    assert result.outcome is Outcome.FAILED
    assert log == ["vip start", "data start", "data stop", "vip stop"]
    assert "stopping again what this start began: data, vip" in result.detail


async def test_a_timed_out_start_is_timed_out() -> None:
    log: list[str] = []
    resources = group(log, vip={"start": None})
    result = await OcfGroupHandler("failover.start", "pg", resources).run()
    assert result.outcome is Outcome.TIMED_OUT
    assert log == ["vip start", "vip stop"]


async def test_a_restart_stops_the_group_then_starts_it() -> None:
    log: list[str] = []
    result = await OcfGroupHandler("restart", "pg", group(log)).run()
    assert result.outcome is Outcome.SUCCEEDED
    assert log == [
        "postgres stop",
        "data stop",
        "vip stop",
        "vip start",
        "data start",
        "postgres start",
    ]


async def test_a_restart_whose_stop_fails_starts_nothing() -> None:
    log: list[str] = []
    result = await OcfGroupHandler("restart", "pg", group(log, postgres={"stop": 1})).run()
    assert result.outcome is Outcome.FAILED
    assert log == ["postgres stop"]
    assert result.detail.endswith("not started again, since the stop failed")


async def test_a_resource_restart_runs_that_agent_only() -> None:
    log: list[str] = []
    result = await OcfGroupHandler("restart", "pg", group(log)).run("data")
    assert result.outcome is Outcome.SUCCEEDED
    assert log == ["data stop", "data start"]
    refused = await OcfGroupHandler("restart", "pg", group(log)).run("nginx")
    assert refused.outcome is Outcome.REFUSED


def test_only_the_handlers_ocf_carries_out() -> None:
    with pytest.raises(ValueError, match=r"not final_action\.shutdown"):
        OcfGroupHandler("final_action.shutdown", "pg", [])


@pytest.mark.parametrize(
    ("codes", "present"),
    [
        ({}, True),
        ({"postgres": 7}, True),
        ({"vip": 7, "data": 7, "postgres": 7}, False),
        ({"vip": 7, "data": None, "postgres": 7}, None),
    ],
)
async def test_the_probe_asks_every_monitor(
    codes: dict[str, int | None], present: bool | None
) -> None:
    log: list[str] = []
    resources = group(log, **{name: {"monitor": code} for name, code in codes.items()})
    probe = OcfGroupProbe("pg", resources)
    assert await probe("pg") is present
    assert sorted(log) == ["data monitor", "postgres monitor", "vip monitor"]
    assert len(probe.describe()) == 3
