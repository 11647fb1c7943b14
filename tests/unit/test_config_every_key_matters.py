"""Every key a configuration may write changes some decision of the core, or it is refused
(issue 27, item 4): random valid monitors run through scripted scenarios in the pure core
(`ClusterState`), and for each recovery key written, some other accepted value of it must give
other decisions. A key no value of which can matter, given the other settings, is inert: the
configuration checks must refuse it (`config.checks`).

Keys outside `monitors.*.recovery` are not varied here. Those that only shape output or
transport, never a decision, are listed in `OUTPUT_ONLY` (docs/configuration.md says so too).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mrwbus.config.loading import parse_config
from mrwbus.config.model import ClusterConfig
from mrwbus.core import operator_verbs
from mrwbus.core.cluster import ClusterState
from mrwbus.core.decision import Decision
from mrwbus.errors import ConfigError
from mrwbus.messages import Category, CommandResult, FaultNotification, Outcome

OUTPUT_ONLY = (
    "service.repeat_summary_interval",  # how repeats are reported (MRW-106), not what is done
    "service.dead_letter_max_length",  # broker arguments of mrwbus.dead
    "service.dead_letter_ttl",
    "agent.*",  # what the reference agent runs; the service's decisions never read it
    "relay.*",  # what the relay watches
    "security.verify_senders",  # who may send, checked before any decision
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)

ALTERNATIVES: dict[str, list[Any]] = {
    "action": ["script", "restart", "failover", "final_action"],
    "target": ["g1", "r1", "all_groups"],
    "outside_server_group": [True, False],
    "max_restarts": [0, 1, 2, 3],
    "max_failovers": [0, 1, 2, 3],
    "final_action": ["none", "stop_group", "shutdown"],
    "script": ["/fix-a", "/fix-b"],
    "before_script": ["/before-a", "/before-b"],
    "reset_counts_after": ["10m", "3h"],
    "clear_on_recovery": [True, False],
    "fence_first": [True, False],
    "rearm_after": ["30s", "5m", "1h"],
    "move_groups_after_final_action": [True, False],
}
ABSENT = object()

recoveries = st.fixed_dictionaries(
    {"action": st.sampled_from(ALTERNATIVES["action"]), "target": st.sampled_from(["g1", "r1"])},
    optional={
        key: st.sampled_from(values)
        for key, values in ALTERNATIVES.items()
        if key not in ("action", "target")
    },
)
server_groups = st.lists(st.sampled_from([None, "a", "b"]), min_size=3, max_size=3)


def document(recovery: dict[str, Any], groups: list[str | None]) -> dict[str, Any]:
    return {
        "servers": {
            f"s{n}": ({"server_group": group} if group else {})
            for n, group in enumerate(groups, start=1)
        },
        "groups": {
            "g1": {"servers": ["s1", "s2", "s3"], "resources": ["r1"]},
            "g2": {"servers": ["s3", "s1"]},
        },
        "monitors": {"m": {"category": "NIC", "keyword": "eth0", "recovery": recovery}},
    }


def accepted(data: dict[str, Any]) -> ClusterConfig | None:
    try:
        return parse_config(yaml.safe_dump(data), "random.yaml")
    except ConfigError:
        return None


def accepted_varied(
    data: dict[str, Any], recovery: dict[str, Any], key: str
) -> ClusterConfig | None:
    """`data` with `recovery`; if refused, once more without the other keys the refusal names
    (a key the new value of `key` makes inert, such as max_restarts when action is failover)."""
    try:
        return parse_config(yaml.safe_dump(data), "random.yaml")
    except ConfigError as refused:
        named = {issue.path.split(".")[-1] for issue in refused.issues}
        fewer = {k: v for k, v in recovery.items() if k == key or k not in named}
        if fewer == recovery:
            return None
        return accepted({**data, "monitors": {"m": {**data["monitors"]["m"], "recovery": fewer}}})


def run(config: ClusterConfig, gap: timedelta, ending: str) -> list[object]:
    """Ten faults `gap` apart, each on the server where g1 runs (`on_s3`: on s3, where g2
    starts; `s2_first`: after a fault on s2;
    `s1_gone`: s1 not alive, g1 on s2); every command answered
    (`silent_stop`: the first failover stop is not); each Error ended by `ending` (a recovery
    notice, an operator's clear, or nothing); ticks in between. What was decided, in order."""
    cluster = ClusterState.for_config(config)
    seen: list[object] = []

    def note(decision: Decision) -> list[Any]:
        step = decision.step.text if decision.step else None
        seen.append(
            (
                step,
                [
                    c.model_dump(mode="json", exclude={"id", "fault_id", "issued_at"})
                    for c in decision.commands
                ],
                [(e.code, e.text) for e in decision.events],
            )
        )
        return list(decision.commands)

    def answer(commands: list[Any], at: datetime, silent: bool) -> None:
        for _ in range(10):
            if not commands:
                return
            more: list[Any] = []
            for command in commands:
                if silent and command.action.value == "failover":
                    silent = False
                    continue
                result = CommandResult(
                    id=f"r-{command.id}",
                    command_id=command.id,
                    server=command.server,
                    outcome=Outcome.SUCCEEDED,
                    finished_at=at,
                )
                more += note(cluster.handle_result(result, at))
            commands = more

    now = T0
    if ending == "s1_gone":  # g1 runs on s2, and s1 is no destination
        cluster.view.placement["g1"] = "s2"
        cluster.view.alive = {"s2", "s3"}
    if ending == "s2_first":  # s2 in Error first (g1 is not there): no destination then
        note(
            cluster.handle_fault(
                "m",
                FaultNotification(
                    id="f0", server="s2", category=Category.NIC, device="eth0", occurred_at=now
                ),
                now,
            )
        )
    for serial in range(1, 11):
        server = "s3" if ending == "on_s3" else cluster.view.placement.get("g1") or "s1"
        fault = FaultNotification(
            id=f"f{serial}", server=server, category=Category.NIC, device="eth0", occurred_at=now
        )
        commands = note(cluster.handle_fault("m", fault, now))
        answer(commands, now + timedelta(seconds=1), ending == "silent_stop")
        note(cluster.tick(now + timedelta(seconds=40)))
        note(cluster.tick(now + timedelta(seconds=61)))
        answer(list(cluster.issued.values()), now + timedelta(seconds=62), False)
        if ending == "recovered":
            notice = fault.model_copy(update={"id": f"n{serial}", "state": "recovered"})
            note(cluster.handle_fault("m", notice, now + timedelta(seconds=70)))
        elif ending == "clear":
            cluster.apply(
                operator_verbs.clear(
                    cluster, "m", server, reset_counts=False, by="op", now=now, cause="c"
                )
            )
        now += gap
        note(cluster.tick(now - timedelta(seconds=1)))
        seen.append((server, cluster.state_of("m", server).status))
    return seen


SCENARIOS = [
    (gap, ending)
    for gap in (timedelta(minutes=1), timedelta(minutes=20), timedelta(hours=5))
    for ending in ("none", "recovered", "clear", "silent_stop")
] + [(timedelta(minutes=20), "on_s3"), (timedelta(minutes=20), "s2_first")]
SCENARIOS += [(timedelta(minutes=20), "s1_gone")]


class Decisions:
    """A configuration's decisions in every scenario, each run only when first compared."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.runs: dict[int, list[object]] = {}

    def __getitem__(self, index: int) -> list[object]:
        if index not in self.runs:
            self.runs[index] = run(self.config, *SCENARIOS[index])
        return self.runs[index]

    def differ(self, other: Decisions) -> bool:
        return any(self[index] != other[index] for index in range(len(SCENARIOS)))


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(recovery=recoveries, groups=server_groups)
def test_every_accepted_recovery_key_changes_some_decision(
    recovery: dict[str, Any], groups: list[str | None]
) -> None:
    config = accepted(document(recovery, groups))
    assume(config is not None)
    assert config is not None
    original = Decisions(config)
    inert = []
    for key in recovery:
        for value in [ABSENT, *ALTERNATIVES[key]]:
            if value is ABSENT and key in ("action", "target"):
                continue
            changed = {k: v for k, v in recovery.items() if k != key}
            if value is not ABSENT:
                changed[key] = value
            if changed == recovery:
                continue
            other = accepted_varied(document(changed, groups), changed, key)
            if other is not None and original.differ(Decisions(other)):
                break
        else:
            inert.append(key)
    assert inert == [], (
        f"accepted, but no value of {inert} changes a decision: {recovery}, {groups}"
    )
