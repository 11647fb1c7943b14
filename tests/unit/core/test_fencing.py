"""Fencing through a peer's agent and the server's BMC (`core.fencing`), through ClusterState:
no group leaves a server without proof, one fence per incident, and the proof sticks."""

from __future__ import annotations

from datetime import datetime, timedelta

from mrwbus.config.loading import parse_config
from mrwbus.core.cluster import ClusterState
from mrwbus.core.decision import Decision
from mrwbus.core.records import ChangeTracker, RecordSet, shared_records
from mrwbus.messages import (
    Action,
    Category,
    CommandResult,
    CommandStep,
    FaultNotification,
    FenceAction,
    FinalAction,
    Outcome,
    PowerState,
    RecoveryCommand,
)

from ..conftest import T0
from .pg import report, succeeded

SECOND = timedelta(seconds=1)
SILENT = timedelta(seconds=16)  # beyond heartbeat_timeout (15 s)


def bmc(name: str, extra: str = "") -> str:
    return (
        f"{{bmc: {{fence_agent: fence_ipmilan, address: 127.0.0.1, port: 623, username: admin,"
        f" password_file: /etc/mrwbus/bmc/{name}{extra}}}}}"
    )


def cluster_of(*, bmc1: str | None = "", monitor: str = "", service: str = "") -> ClusterState:
    """s1 runs `app`; s2 then s3 may take it; s1 has a BMC unless `bmc1` is None."""
    s1 = "{}" if bmc1 is None else bmc("s1", bmc1)
    config = parse_config(
        f"""
servers: {{s1: {s1}, s2: {bmc("s2")}, s3: {bmc("s3")}}}
groups:
  app: {{servers: [s1, s2, s3]}}
service:
  heartbeat_timeout: 15s{service}
agent: {{heartbeat_interval: 5s}}
monitors:
  nic:
    category: NIC
    recovery: {{action: failover, target: app{monitor}}}
  hba:
    category: FC
    recovery: {{action: final_action, target: app, final_action: bmc_power_off}}
"""
    )
    return ClusterState.for_config(config)


def answer(
    command: RecoveryCommand,
    outcome: Outcome = Outcome.SUCCEEDED,
    power: PowerState | None = PowerState.OFF,
) -> CommandResult:
    """The peer's result of a fence, with the power its BMC reported."""
    return succeeded(command, outcome).model_copy(update={"power": power})


def fault(server: str, category: str, n: int = 0) -> FaultNotification:
    return FaultNotification(
        id=f"fault-{n}", server=server, category=Category(category), device="d0", occurred_at=T0
    )


def codes(decision: Decision) -> list[str]:
    return [event.code for event in decision.events]


def heard_from_all(cluster: ClusterState, at: datetime = T0, *, s1: bool = True) -> None:
    if s1:
        cluster.handle_report(report("s1", "app", at=at), at)
    cluster.handle_report(report("s2", at=at), at)
    cluster.handle_report(report("s3", at=at), at)


def s1_falls_silent(cluster: ClusterState) -> Decision:
    """Every agent reports at T0; s2 and s3 keep reporting, s1 is never heard from again."""
    heard_from_all(cluster)
    later = T0 + SILENT
    cluster.handle_report(report("s2", at=later, n=1), later)
    cluster.handle_report(report("s3", at=later, n=1), later)
    return cluster.tick(later)


def test_a_silent_server_holding_a_group_is_fenced_by_the_peer_that_takes_the_group() -> None:
    cluster = cluster_of()
    decision = s1_falls_silent(cluster)
    assert codes(decision) == ["MRW-601", "MRW-1001", "MRW-201"]
    [fence] = decision.commands
    assert (fence.action, fence.server, fence.target) == (Action.FENCE, "s2", "s1")
    assert fence.fence_action is FenceAction.OFF and fence.routing_key == "s2.fence"
    assert cluster.view.placement["app"] == "s1"  # nothing moves before the proof
    assert cluster.tick(T0 + SILENT + SECOND).commands == ()  # one fence at a time


def test_a_verified_fence_downs_the_server_and_its_group_starts_elsewhere() -> None:
    cluster = cluster_of()
    [fence] = s1_falls_silent(cluster).commands
    decision = cluster.handle_result(answer(fence), T0 + SILENT)
    assert codes(decision) == ["MRW-701", "MRW-1002", "MRW-321", "MRW-201"]
    [start] = decision.commands
    assert (start.step, start.server, start.from_server) == (CommandStep.START, "s2", "s1")
    down = cluster.view.down["s1"]
    assert (down.how, down.by) == ("fenced (off) by s2", "s2")
    assert "s1" not in cluster.view.alive and cluster.fences == {}
    cluster.handle_result(answer(start, power=None), T0 + SILENT)
    assert cluster.view.placement["app"] == "s2"


def test_a_fence_not_verified_goes_to_the_next_peer_then_waits_and_doubles() -> None:
    cluster = cluster_of()
    [first] = s1_falls_silent(cluster).commands
    now = T0 + SILENT
    still_on = cluster.handle_result(answer(first, power=PowerState.ON), now)
    assert codes(still_on) == ["MRW-701", "MRW-1003", "MRW-201"]
    [second] = still_on.commands
    assert second.server == "s3" and second.id != first.id
    failed = cluster.handle_result(answer(second, Outcome.FAILED, power=None), now)
    assert codes(failed) == ["MRW-702", "MRW-1003", "MRW-1004"]
    assert failed.commands == () and cluster.view.placement["app"] == "s1"
    assert "every peer failed (s2, s3)" in failed.events[-1].text
    assert cluster.tick(now + 9 * SECOND).commands == ()  # fence_retry_after: 10 s
    again = cluster.tick(now + 10 * SECOND)
    [third] = again.commands
    assert third.server == "s2" and third.id not in (first.id, second.id)
    # no answer in time (the BMC's 60 s + 10 s), then s3 fails: the next wait is 20 s
    heard_from_all(cluster, now + 80 * SECOND, s1=False)
    timed_out = cluster.tick(now + 81 * SECOND)
    [fourth] = timed_out.commands
    assert fourth.server == "s3"
    cluster.handle_result(answer(fourth, Outcome.FAILED, power=None), now + 81 * SECOND)
    assert cluster.fences["s1"].deadline == now + 101 * SECOND


def test_a_silent_server_without_a_bmc_stays_put_and_the_event_says_why() -> None:
    cluster = cluster_of(bmc1=None)
    decision = s1_falls_silent(cluster)
    assert codes(decision) == ["MRW-601", "MRW-1005"]
    assert "nobody can prove it stopped (it has no BMC)" in decision.events[1].text
    assert decision.commands == () and cluster.view.placement["app"] == "s1"


def test_fencing_silent_servers_can_be_turned_off() -> None:
    cluster = cluster_of(service="\n  fence_silent_servers: false")
    assert codes(s1_falls_silent(cluster)) == ["MRW-601", "MRW-1005"]


def test_a_silent_server_that_answers_again_is_not_fenced_any_more() -> None:
    cluster = cluster_of()
    [fence] = s1_falls_silent(cluster).commands
    back = T0 + SILENT + SECOND
    cluster.handle_report(report("s1", "app", at=back, n=2), back)
    assert cluster.fences == {}
    late = cluster.handle_result(answer(fence), back)  # the peer ran it anyway
    assert codes(late) == ["MRW-701"] and cluster.view.placement["app"] == "s1"


def test_a_fenced_server_is_no_destination_until_its_agent_reports_after_the_fence() -> None:
    cluster = cluster_of()
    [fence] = s1_falls_silent(cluster).commands
    fenced_at = T0 + SILENT
    cluster.handle_result(answer(fence), fenced_at)
    stale = report("s1", "app", at=fenced_at - SECOND, n=3)  # sent before: proves nothing
    assert codes(cluster.handle_report(stale, fenced_at)) == []
    assert "s1" in cluster.view.down
    fresh = report("s1", at=fenced_at + SECOND, n=4)
    assert codes(cluster.handle_report(fresh, fenced_at + SECOND)) == ["MRW-602"]
    assert "s1" not in cluster.view.down and "s1" in cluster.view.alive


def test_fence_first_fences_a_source_that_did_not_stop_through_a_peer() -> None:
    cluster = cluster_of(monitor=", fence_first: true, final_action: shutdown")
    heard_from_all(cluster)
    [stop] = cluster.handle_fault("nic", fault("s1", "NIC"), T0).commands
    assert stop.step is CommandStep.STOP and stop.server == "s1"
    heard_from_all(cluster, T0 + timedelta(seconds=20))
    timed_out = cluster.tick(T0 + timedelta(seconds=31))  # stop_timeout: 30 s
    assert codes(timed_out)[:3] == ["MRW-311", "MRW-1001", "MRW-201"]
    [fence] = timed_out.commands
    assert (fence.server, fence.target, fence.action) == ("s2", "s1", Action.FENCE)
    heard_from_all(cluster, T0 + timedelta(seconds=50), s1=False)
    assert cluster.tick(T0 + timedelta(seconds=62)).commands == ()  # the fence drives it
    decision = cluster.handle_result(answer(fence), T0 + timedelta(seconds=62))
    [start] = decision.commands
    assert (start.step, start.server) == (CommandStep.START, "s2")
    assert "MRW-312" not in codes(decision)


def test_fence_first_that_cannot_fence_leaves_the_group_and_recovers_it_later() -> None:
    cluster = cluster_of(monitor=", fence_first: true, final_action: shutdown")
    heard_from_all(cluster)
    cluster.handle_fault("nic", fault("s1", "NIC"), T0)
    heard_from_all(cluster, T0 + timedelta(seconds=20))
    [fence] = cluster.tick(T0 + timedelta(seconds=31)).commands
    now = T0 + timedelta(seconds=32)
    first = cluster.handle_result(answer(fence, Outcome.FAILED, power=None), now)
    [second] = first.commands
    given_up = cluster.handle_result(answer(second, Outcome.FAILED, power=None), now)
    assert codes(given_up)[-2:] == ["MRW-1004", "MRW-312"]
    assert cluster.failovers == {} and cluster.view.placement["app"] == "s1"
    assert cluster.fences["s1"].recover_groups
    later = now + timedelta(seconds=10)
    cluster.handle_report(report("s2", at=later, n=5), later)
    cluster.handle_report(report("s3", at=later, n=5), later)
    [retry] = cluster.tick(later).commands
    recovered = cluster.handle_result(answer(retry), later)
    [start] = recovered.commands
    assert (start.step, start.server, start.from_server) == (CommandStep.START, "s2", "s1")


def test_a_bmc_final_action_is_carried_out_by_a_peer_and_its_group_follows() -> None:
    cluster = cluster_of()
    heard_from_all(cluster)
    decision = cluster.handle_fault("hba", fault("s1", "FC"), T0)
    [fence] = decision.commands
    assert (fence.server, fence.target, fence.final_action) == (
        "s2",
        "s1",
        FinalAction.BMC_POWER_OFF,
    )
    assert fence.fence_action is FenceAction.OFF and fence.monitor == "hba"
    followed = cluster.handle_result(answer(fence), T0)
    assert "MRW-321" in codes(followed) and cluster.view.down["s1"].by == "s2"


def test_a_bmc_final_action_on_a_server_without_a_bmc_stays_a_local_command() -> None:
    cluster = cluster_of(bmc1=None)
    [command] = cluster.handle_fault("hba", fault("s1", "FC"), T0).commands
    assert (command.action, command.server, command.target) == (Action.FINAL_ACTION, "s1", None)


def test_a_server_a_final_action_took_down_is_no_destination_until_it_reports() -> None:
    cluster = cluster_of(bmc1=None, service="\n  exclude_destinations: same_monitor")
    heard_from_all(cluster)
    cluster.handle_fault("hba", fault("s1", "FC"), T0)
    [off] = [c for c in cluster.issued.values() if c.action is Action.FINAL_ACTION]
    [start] = cluster.handle_result(answer(off, power=None), T0).commands
    assert "s1" in cluster.view.down and "s1" not in cluster.view.alive
    cluster.handle_result(answer(start, power=None), T0)
    assert cluster.view.placement["app"] == "s2"
    [stop] = cluster.handle_fault("nic", fault("s2", "NIC", n=7), T0 + SECOND).commands
    assert stop.to_server == "s3"  # never the downed s1, first in priority


def test_a_fence_under_way_survives_a_takeover_and_finishes_once() -> None:
    cluster = cluster_of()
    tracker = ChangeTracker.starting_from(cluster)
    records = RecordSet()
    records.apply(
        [
            (namespace, key, value)
            for namespace, values in shared_records(cluster).items()
            for key, value in values.items()
        ]
    )
    [fence] = s1_falls_silent(cluster).commands
    records.apply(tracker.changes(cluster))
    restored = records.restore(cluster.config).cluster
    restored.restart_clocks(T0 + SILENT + SECOND)
    assert restored.fences["s1"].awaiting == fence.id
    assert restored.tick(T0 + SILENT + 2 * SECOND).commands == ()  # waits for the same peer
    done = restored.handle_result(answer(fence), T0 + SILENT + 2 * SECOND)
    assert "MRW-1002" in codes(done) and len(done.commands) == 1
    assert restored.handle_result(answer(fence), T0 + SILENT + 3 * SECOND).commands == ()


def test_a_result_from_another_peer_than_the_one_asked_proves_nothing() -> None:
    cluster = cluster_of()
    [fence] = s1_falls_silent(cluster).commands
    forged = answer(fence).model_copy(update={"server": "s3"})
    assert cluster.result_refusal(forged) is not None
    assert "s1" not in cluster.view.down
