"""One scripted scenario that `simulate` and the real service both run, step by step.

It covers what an offline tester most easily gets wrong: counts that expire, a suspended monitor,
a target that is not active, and a suppressed final action. Each step is a fault or an operator's
request; `wait` is how long to let pass first (simulate moves its clock, the service sleeps).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mrwbus.config.model import ClusterConfig
from mrwbus.core.cluster import ClusterState
from mrwbus.messages import ControlRequest, ControlVerb, Event, FaultNotification
from mrwbus.operators.simulate import simulate
from mrwbus.relay import make_fault
from mrwbus.service.answers import handle_control

CONFIG = """
security: {verify_senders: false}
servers:
  server1: {server_group: site-a}
  server2: {server_group: site-a}
groups:
  failover1: {servers: [server1, server2], resources: [app1]}
monitors:
  expiring:
    category: NIC
    recovery: {action: restart, target: failover1, max_restarts: 1, reset_counts_after: 2s}
  suspended:
    category: FC
    recovery: {action: restart, target: failover1}
  inactive:
    category: SPS
    recovery: {action: restart, target: failover1}
  suppressed:
    category: HA/SS
    recovery: {action: final_action, target: failover1, final_action: reboot}
"""


@dataclass(frozen=True)
class Step:
    fault: FaultNotification | None = None
    control: ControlRequest | None = None
    wait: timedelta = timedelta(0)


def control(verb: ControlVerb, monitor: str) -> ControlRequest:
    return ControlRequest(id=f"scenario-{verb.value}-{monitor}", verb=verb, monitor=monitor)


def steps() -> list[Step]:
    return [
        Step(fault=make_fault("server1", "NIC", "eth0", fault_id="s-1")),  # restart 1 of 1
        Step(control=control(ControlVerb.CLEAR, "expiring")),
        # more than reset_counts_after later: the counts expire, the ladder starts again
        Step(fault=make_fault("server1", "NIC", "eth0", fault_id="s-2"), wait=timedelta(seconds=3)),
        Step(control=control(ControlVerb.SUSPEND, "suspended")),
        Step(fault=make_fault("server1", "FC", "hba0", fault_id="s-3")),  # counted, nothing done
        Step(fault=make_fault("server2", "SPS", "psu0", fault_id="s-4")),  # failover1 not there
        # server2 is in Error now: server1 is the last healthy server, so no reboot
        Step(fault=make_fault("server1", "HA/SS", "ss0", fault_id="s-5")),
    ]


def fault_ids() -> set[str]:
    return {step.fault.id for step in steps() if step.fault is not None}


def comparable(found: list[Event]) -> list[tuple[str, str | None, str | None, str]]:
    """What must agree: each event's code, monitor, server and sentence, in order."""
    return [(event.code, event.monitor, event.server, event.text) for event in found]


EXPECTED_CODES = {
    "s-2": "MRW-403",  # counts expired (the event simulate used to hide)
    "s-3": "MRW-104",  # fault while suspended
    "s-4": "MRW-301",  # target not active
    "s-5": "MRW-305",  # final action suppressed
}


def simulated(config: ClusterConfig, start: datetime) -> dict[str, list[Event]]:
    """The scenario through `mrwbus simulate`'s own function: each fault's events, by fault id."""
    cluster = ClusterState.for_config(config)
    now = start
    found: dict[str, list[Event]] = {}
    for step in steps():
        now += step.wait
        if step.control is not None:
            handle_control(cluster, step.control, now)
        else:
            assert step.fault is not None
            simulation = simulate(config, step.fault, cluster, now)
            found[step.fault.id] = [
                event for outcome in simulation.outcomes for event in outcome.decision.events
            ]
    return found
