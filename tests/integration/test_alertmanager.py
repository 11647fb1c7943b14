"""Events that need a person reach a real Alertmanager, and are resolved when they end.

The service runs in this process with `alerting.alertmanager_url` set; the test plays the
agents on the real broker (its own vhost) and runs Debian's Alertmanager on 127.0.0.1 with a
webhook receiver of its own, routed for critical alerts."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from mrwbus.bus.rpc import ask_service
from mrwbus.bus.topology import RESULTS
from mrwbus.config.loading import parse_config
from mrwbus.messages import (
    Action,
    AgentReport,
    ControlRequest,
    ControlVerb,
    FinalAction,
    ReportReason,
    new_id,
    utc_now,
)
from mrwbus.relay import make_fault
from mrwbus.service.service import Service
from tests.integration.alertmanager import free_port, running_alertmanager
from tests.integration.broker import BusProbe
from tests.integration.conftest import running_service

pytestmark = pytest.mark.broker

SERVERS = ("server1", "server2", "server3")


def cluster(alertmanager_url: str) -> str:
    return textwrap.dedent(
        f"""
        servers: {{server1: {{}}, server2: {{}}, server3: {{}}}}
        security: {{verify_senders: false}}
        groups:
          failover1: {{servers: [server1, server2, server3], resources: [app1]}}
        monitors:
          am:
            category: HA/AM
            recovery:
              action: final_action
              target: failover1
              final_action: shutdown
              move_groups_after_final_action: false
        alerting:
          alertmanager_url: {alertmanager_url}
          labels: {{cluster: test}}
          max_backoff_seconds: 1
        """
    )


async def report(probe: BusProbe, server: str, *groups: str) -> None:
    message = AgentReport(
        id=new_id(),
        server=server,
        active_groups=list(groups),
        reason=ReportReason.HEARTBEAT,
        heartbeat_interval=5,
        sent_at=utc_now(),
    )
    await probe.exchanges[RESULTS].publish(aio_pika.Message(message.to_body()), message.routing_key)


async def until(condition: Any, what: str, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.05)


async def shut_server1_down(service: Service, probe: BusProbe) -> None:
    """failover1 runs on server1; an HA/AM fault there sends the shutdown; the agent succeeds."""
    for server in SERVERS:
        await report(probe, server, *(["failover1"] if server == "server1" else []))
    await until(
        lambda: service.cluster.view.placement.get("failover1") == "server1",
        "failover1 placed on server1",
    )
    await probe.publish(make_fault("server1", "HA/AM", "app1", "application gone"))
    (command,) = await probe.next_commands(1)
    assert (command.action, command.final_action) == (Action.FINAL_ACTION, FinalAction.SHUTDOWN)
    await probe.answer(command)
    await probe.wait_event("MRW-701")


FINAL_ACTION_LABELS = {
    "alertname": "MrwbusFinalActionTaken",
    "severity": "critical",
    "monitor": "am",
    "server": "server1",
    "cluster": "test",
}


def is_final_action(status: str) -> Any:
    return lambda alert: alert["labels"] == FINAL_ACTION_LABELS and alert["status"] == status


async def clear(amqp_url: str) -> None:
    reply = await ask_service(
        amqp_url,
        ControlRequest(id=new_id(), verb=ControlVerb.CLEAR, monitor="am", server="server1"),
    )
    assert reply.ok, reply.error


async def test_a_shutdown_arrives_as_an_alert_and_is_resolved_by_clear(
    amqp_url: str, probe: BusProbe, tmp_path: Path
) -> None:
    port = free_port()
    async with running_alertmanager(tmp_path / "am", port) as alertmanager:
        config = parse_config(cluster(alertmanager.url), "test.yaml")
        async with running_service(config, amqp_url) as service:
            await shut_server1_down(service, probe)

            (alert,) = await alertmanager.wait_alerts(bool, alertname="MrwbusFinalActionTaken")
            assert alert["labels"] == FINAL_ACTION_LABELS
            assert "shutdown" in alert["annotations"]["command"]
            assert alert["annotations"]["code"] == "MRW-201"
            assert alert["annotations"]["runbook_url"].endswith("#mrwbusfinalactiontaken")
            await alertmanager.webhook.wait_for(is_final_action("firing"))
            # The monitor's own Error is a warning: in Alertmanager, not routed to the webhook.
            await alertmanager.wait_alerts(bool, alertname="MrwbusMonitorError", server="server1")

            await clear(amqp_url)
            await alertmanager.webhook.wait_for(is_final_action("resolved"))
            await alertmanager.wait_alerts(
                lambda found: not found, alertname="MrwbusFinalActionTaken"
            )
            await alertmanager.wait_alerts(lambda found: not found, alertname="MrwbusMonitorError")
            assert not any(
                alert["labels"]["alertname"] == "MrwbusMonitorError"
                for alert in alertmanager.webhook.alerts
            )
            assert service.counters.alerts_posted >= 4


async def test_nothing_is_lost_while_alertmanager_and_the_service_are_down(
    amqp_url: str, probe: BusProbe, tmp_path: Path
) -> None:
    """The shutdown happens while Alertmanager is down; the service is stopped and started
    again before Alertmanager comes: the alert still arrives, from the durable queue."""
    port = free_port()
    config = parse_config(cluster(f"http://127.0.0.1:{port}"), "test.yaml")
    async with running_service(config, amqp_url) as service:
        await shut_server1_down(service, probe)
        await until(lambda: service.counters.alertmanager_failures > 0, "a failed post")
        assert service.alerting is not None
        assert service.alerting.health.last_error
    async with (
        running_service(config, amqp_url),
        running_alertmanager(tmp_path / "am", port) as alertmanager,
    ):
        await alertmanager.webhook.wait_for(is_final_action("firing"))
        await clear(amqp_url)
        await alertmanager.webhook.wait_for(is_final_action("resolved"))
