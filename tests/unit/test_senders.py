"""Who may send what to the service (`mrwbus.service.senders`): pure checks."""

from __future__ import annotations

import textwrap

import pytest

from mrwbus.bus.identity import SENDER_HEADER, effective_sender
from mrwbus.bus.roles import SERVICE
from mrwbus.config.loading import parse_config
from mrwbus.config.model import ClusterConfig
from mrwbus.messages import (
    AgentReport,
    CommandResult,
    ControlRequest,
    ControlVerb,
    Outcome,
    ReportReason,
    utc_now,
)
from mrwbus.relay import make_fault
from mrwbus.service.senders import agent_message_refusal, control_refusal, fault_refusal, named

YAML = """
servers:
  server1: {}
  server2: {}
"""


def config(verify: bool = True) -> ClusterConfig:
    text = textwrap.dedent(YAML) + f"security: {{verify_senders: {str(verify).lower()}}}\n"
    return parse_config(text, "test.yaml")


def test_a_fault_only_from_the_relay_of_its_server() -> None:
    fault = make_fault("server1", "NIC", "eth0", "down")
    assert fault_refusal(fault, "relay-server1", config()) is None
    for sender in ("relay-server2", "agent-server1", "operator", SERVICE, None):
        reason = fault_refusal(fault, sender, config())
        assert reason is not None and "relay-server1" in reason
    assert "did not say who it is" in (fault_refusal(fault, None, config()) or "")
    assert fault_refusal(fault, None, config(verify=False)) is None


def test_results_and_reports_only_from_the_agent_of_their_server() -> None:
    now = utc_now()
    done = CommandResult(
        id="r", command_id="c", server="server1", outcome=Outcome.SUCCEEDED, finished_at=now
    )
    report = AgentReport(
        id="p",
        server="server1",
        active_groups=[],
        reason=ReportReason.HEARTBEAT,
        heartbeat_interval=5,
        sent_at=now,
    )
    for message in (done, report):
        assert agent_message_refusal(message, "agent-server1", config()) is None
        assert agent_message_refusal(message, "agent-server2", config()) is not None
        assert agent_message_refusal(message, None, config()) is not None
        assert agent_message_refusal(message, "agent-server2", config(verify=False)) is None


@pytest.mark.parametrize("verb", list(ControlVerb))
def test_operators_may_use_every_verb_viewers_status_and_ping(verb: ControlVerb) -> None:
    request = ControlRequest(id="q", verb=verb)
    assert control_refusal(request, verb.value, "operator", config()) is None
    viewer = control_refusal(request, verb.value, "viewer", config())
    assert (viewer is None) == (verb in (ControlVerb.STATUS, ControlVerb.PING))
    for other in ("relay-server1", "agent-server1", SERVICE, None):
        assert control_refusal(request, verb.value, other, config()) is not None
    assert control_refusal(request, verb.value, None, config(verify=False)) is None


def test_a_routing_key_other_than_the_verb_is_refused() -> None:
    clear = ControlRequest(id="q", verb=ControlVerb.CLEAR, monitor="m")
    reason = control_refusal(clear, "status", "operator", config())
    assert reason is not None and "routing key 'status'" in reason


def test_the_event_log_names_the_verified_user() -> None:
    request = ControlRequest(id="q", verb=ControlVerb.CLEAR, by="ann@host1")
    assert named(request, "operator", config()).by == "operator (ann@host1)"
    assert named(request.model_copy(update={"by": "operator"}), "operator", config()).by == (
        "operator"
    )
    assert named(request, "operator", config(verify=False)).by == "ann@host1"


def test_only_the_service_vouches_for_a_replays_original_sender() -> None:
    replayed = {SENDER_HEADER: b"relay-server1"}
    assert effective_sender(SERVICE, replayed) == "relay-server1"
    assert effective_sender(SERVICE, {SENDER_HEADER: ""}) is None
    assert effective_sender("agent-server1", replayed) == "agent-server1"
    assert effective_sender("operator", None) == "operator"
    assert effective_sender(SERVICE, {}) == SERVICE
