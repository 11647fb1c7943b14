"""The recovery ladder end to end: restart, clear, final action, reset, expiry, recovery notices."""

from __future__ import annotations

import asyncio

import pytest

from mrwbus import cli
from mrwbus.core.status import shown_status
from mrwbus.messages import Action, FinalAction
from mrwbus.relay import make_fault
from tests.integration.broker import BusProbe
from tests.integration.conftest import RunningService

pytestmark = pytest.mark.broker

LADDER = """
servers:
  server1: {server_group: site-a}
  server2: {server_group: site-a}
security: {verify_senders: false}
groups:
  failover1: {servers: [server1, server2], resources: [app1]}
monitors:
  mrw1:
    category: NIC
    keyword: eth0
    recovery:
      action: restart
      target: failover1
      max_restarts: 1
      final_action: reboot
      reset_counts_after: {reset_after}
      clear_on_recovery: true
"""


async def operator(amqp_url: str, *argv: str) -> int:
    """Run the real `mrwbus` command line, as an operator would, against the test vhost."""
    return await asyncio.to_thread(cli.main, [*argv, "--amqp-url", amqp_url])


async def fault_gives(probe: BusProbe, action: Action) -> None:
    await probe.publish(make_fault("server1", "NIC", "eth0"))
    (command,) = await probe.next_commands(1)
    assert command.action is action, command
    if action is Action.FINAL_ACTION:
        assert command.final_action is FinalAction.REBOOT


async def test_clear_keeps_counts_and_reset_restarts_the_ladder(
    start_service: RunningService, probe: BusProbe, amqp_url: str
) -> None:
    service = await start_service(LADDER.replace("{reset_after}", "1h"))
    await fault_gives(probe, Action.RESTART)

    assert await operator(amqp_url, "clear", "mrw1", "--server", "server1") == 0
    await probe.wait_event("MRW-401", server="server1")
    state = service.cluster.state_of("mrw1", "server1")
    assert (state.status.value, state.restarts) == ("Normal", 1)
    await fault_gives(probe, Action.FINAL_ACTION)  # not a second restart

    assert await operator(amqp_url, "clear", "mrw1") == 0
    await probe.publish(make_fault("server1", "NIC", "eth0"))  # the final action was taken once
    await probe.wait_event("MRW-303")
    await probe.no_more_commands()

    assert await operator(amqp_url, "clear", "mrw1", "--reset-counts") == 0
    await probe.wait_event("MRW-402")
    await fault_gives(probe, Action.RESTART)
    await probe.no_more_commands()


async def test_counts_expire_after_reset_counts_after(
    start_service: RunningService, probe: BusProbe, amqp_url: str
) -> None:
    await start_service(LADDER.replace("{reset_after}", "2s"))
    await fault_gives(probe, Action.RESTART)
    assert await operator(amqp_url, "clear", "mrw1") == 0
    await asyncio.sleep(3)
    await fault_gives(probe, Action.RESTART)
    expired = await probe.wait_event("MRW-403")
    assert expired.server == "server1"


async def test_recovery_notice_returns_to_normal_and_the_ladder_continues(
    start_service: RunningService, probe: BusProbe
) -> None:
    service = await start_service(LADDER.replace("{reset_after}", "1h"))
    await fault_gives(probe, Action.RESTART)

    await probe.publish(make_fault("server1", "NIC", "eth0", state="recovered"))
    await probe.wait_event("MRW-502")
    await probe.no_more_commands()
    assert shown_status(service.cluster, "mrw1", "server1") == "Normal"
    assert service.cluster.state_of("mrw1", "server1").restarts == 1

    await fault_gives(probe, Action.FINAL_ACTION)


async def test_operator_errors_are_one_sentence(
    start_service: RunningService, amqp_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await start_service(LADDER.replace("{reset_after}", "1h"))
    assert await operator(amqp_url, "clear", "nope") == 1
    assert capsys.readouterr().err.strip() == "mrwbus: there is no monitor 'nope' (known: mrw1)"
