"""The wire contract: what each message accepts, refuses, and how it is addressed."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from mrwbus.errors import ContractError
from mrwbus.messages import (
    MAX_BODY_BYTES,
    Action,
    AgentReport,
    Category,
    CommandResult,
    CommandStep,
    ControlRequest,
    ControlVerb,
    Event,
    EventBatch,
    EventKind,
    FaultNotification,
    FinalAction,
    Outcome,
    RecoveryCommand,
    ReportReason,
    derived_id,
    describe_validation_error,
    json_object,
    new_id,
    parse_agent_message,
    parse_fault,
    parse_message,
    utc_now,
)

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def fault_body(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "id": "f-1",
        "server": "server1",
        "category": "NIC",
        "device": "eth0",
        "occurred_at": "2024-05-01T12:00:00Z",
    }
    body.update(changes)
    return body


# --- categories and actions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "word"),
    [
        (Category.NIC, "nic"),
        (Category.FC, "fc"),
        (Category.HA_SS, "ha-ss"),
        (Category.HA_AM, "ha-am"),
        (Category.HA_RS, "ha-rs"),
        (Category.SPS, "sps"),
    ],
)
def test_category_routing_key_word_round_trips(category: Category, word: str) -> None:
    assert category.routing_key == word
    assert Category.from_routing_key(word) is category


def test_category_values_are_the_six_of_the_infrastructure() -> None:
    assert [c.value for c in Category] == ["NIC", "FC", "HA/SS", "HA/AM", "HA/RS", "SPS"]


@pytest.mark.parametrize("word", ["NIC", "ha/ss", "eth", ""])
def test_unknown_routing_key_word_is_refused(word: str) -> None:
    with pytest.raises(ValueError, match="unknown category key"):
        Category.from_routing_key(word)


@pytest.mark.parametrize(
    ("final", "down"),
    [
        (FinalAction.NONE, False),
        (FinalAction.STOP_GROUP, False),
        (FinalAction.STOP_CLUSTER_SERVICE, True),
        (FinalAction.SHUTDOWN, True),
        (FinalAction.REBOOT, True),
        (FinalAction.SYSRQ_PANIC, True),
        (FinalAction.BMC_POWER_OFF, True),
    ],
)
def test_final_actions_that_take_the_server_down(final: FinalAction, down: bool) -> None:
    assert final.takes_server_down is down


# --- fault notifications ---------------------------------------------------------------------


def test_fault_notification_is_read_with_defaults() -> None:
    fault = FaultNotification.model_validate(fault_body(category="HA/SS"))
    assert fault.category is Category.HA_SS
    assert fault.state == "error"
    assert fault.message == ""
    assert fault.occurred_at == AT
    assert fault.routing_key == "server1.ha-ss"


def test_fault_notification_round_trips_through_its_body() -> None:
    fault = FaultNotification.model_validate(fault_body(state="recovered", message="link up"))
    body = fault.to_body()
    assert isinstance(body, bytes)
    assert FaultNotification.model_validate_json(body) == fault
    assert json.loads(body)["state"] == "recovered"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"category": "ETH"}, "category"),
        ({"category": "nic"}, "category"),
        ({"server": "server.1"}, "server"),
        ({"server": ""}, "server"),
        ({"device": "x" * 1024}, "device"),
        ({"device": "é" * 512}, "device"),
        ({"occurred_at": "2024-05-01T12:00:00"}, "occurred_at"),
        ({"state": "cleared"}, "state"),
        ({"id": ""}, "id"),
        ({"message": "m" * 4097}, "message"),
    ],
    ids=[
        "unknown-field",
        "unknown-category",
        "lowercase-category",
        "bad-server-name",
        "empty-server",
        "device-1024-bytes",
        "device-multibyte-1024-bytes",
        "naive-time",
        "unknown-state",
        "empty-id",
        "message-too-long",
    ],
)
def test_fault_notification_breaking_the_contract_is_refused(
    changes: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        FaultNotification.model_validate(fault_body(**changes))
    assert [error["loc"][0] for error in caught.value.errors()] == [field]


@pytest.mark.parametrize("field", ["id", "server", "category", "device", "occurred_at"])
def test_fault_notification_required_fields(field: str) -> None:
    body = fault_body()
    del body[field]
    with pytest.raises(ValidationError) as caught:
        FaultNotification.model_validate(body)
    assert caught.value.errors()[0]["type"] == "missing"


def test_device_of_1023_multibyte_bytes_is_accepted() -> None:
    fault = FaultNotification.model_validate(fault_body(device="€" * 341))
    assert len(fault.device.encode()) == 1023


def test_messages_are_frozen() -> None:
    fault = FaultNotification.model_validate(fault_body())
    with pytest.raises(ValidationError):
        fault.device = "eth1"  # type: ignore[misc]


# --- commands and events ---------------------------------------------------------------------


def test_recovery_command_routing_key_and_body_leave_out_empty_fields() -> None:
    command = RecoveryCommand(
        id="c-1",
        fault_id="f-1",
        monitor="mrw2",
        server="server3",
        action=Action.FAILOVER,
        group="db",
        step=CommandStep.START,
        from_server="server2",
        to_server="server3",
        issued_at=AT,
    )
    assert command.routing_key == "server3.failover"
    body = json.loads(command.to_body())
    assert "final_action" not in body
    assert "script" not in body
    assert body["step"] == "start"
    assert RecoveryCommand.model_validate_json(command.to_body()) == command


def test_event_routing_key_uses_kind_and_monitor() -> None:
    event = Event(
        id="e-1", kind=EventKind.NOT_TAKEN, code="MRW-301", text="t", monitor="mrw1", at=AT
    )
    assert event.routing_key == "not_taken.mrw1"
    anonymous = Event(id="e-2", kind=EventKind.UNMATCHED, code="MRW-110", text="t", at=AT)
    assert anonymous.routing_key == "unmatched._"


# --- ids and clocks --------------------------------------------------------------------------


def test_derived_id_is_deterministic_and_depends_on_every_part() -> None:
    first = derived_id("command", "f-1", "mrw1", "server1")
    assert first == derived_id("command", "f-1", "mrw1", "server1")
    assert first != derived_id("command", "f-1", "mrw1", "server2")
    assert first != derived_id("command", "f-2", "mrw1", "server1")
    # parts are separated, so moving a boundary changes the id
    assert derived_id("ab", "c") != derived_id("a", "bc")


@pytest.mark.parametrize("parts", [("command", "f-1", "mrw1", "server1"), ("ü", ""), ("x" * 500,)])
def test_derived_id_is_uuid5_in_the_id_namespace(parts: tuple[str, ...]) -> None:
    # The ids journaled and published by earlier versions must come out the same.
    namespace = uuid.UUID("7a3c4e8e-5b1d-4c55-9a07-0d7f2b0c6e11")
    assert derived_id(*parts) == str(uuid.uuid5(namespace, "\x1f".join(parts)))


def test_new_ids_are_unique_and_clock_is_aware() -> None:
    assert new_id() != new_id()
    assert utc_now().tzinfo is not None


# --- parsing off the wire --------------------------------------------------------------------


def body_of(data: dict[str, object]) -> bytes:
    return json.dumps(data).encode("utf-8")


def test_parse_fault_accepts_a_body_matching_its_routing_key() -> None:
    fault = parse_fault(body_of(fault_body(category="HA/AM")), "server1.ha-am")
    assert (fault.server, fault.category, fault.device) == ("server1", Category.HA_AM, "eth0")


@pytest.mark.parametrize(
    ("body", "routing_key", "problem"),
    [
        (b"x" * (MAX_BODY_BYTES + 1), "server1.nic", f"at most {MAX_BODY_BYTES} allowed"),
        (b"\xff\xfe", "server1.nic", "not valid UTF-8"),
        (b"{not json", "server1.nic", "body is not JSON"),
        (b"[1, 2]", "server1.nic", "must be a JSON object"),
        (body_of(fault_body(device="x" * 1024)), "server1.nic", "device: is 1024 bytes"),
        (body_of(fault_body(colour="red")), "server1.nic", "colour"),
        (body_of(fault_body()), "server2.nic", "does not match the body"),
        (body_of(fault_body()), "server1.fc", "does not match the body"),
    ],
    ids=[
        "too-large",
        "not-utf8",
        "not-json",
        "not-object",
        "long-device",
        "extra",
        "server",
        "category",
    ],
)
def test_parse_fault_refuses_what_breaks_the_contract(
    body: bytes, routing_key: str, problem: str
) -> None:
    with pytest.raises(ContractError, match=re.escape(problem)):
        parse_fault(body, routing_key)


def test_describe_validation_error_lists_at_most_five_problems() -> None:
    with pytest.raises(ValidationError) as caught:
        FaultNotification.model_validate({})
    text = describe_validation_error(caught.value)
    assert text.startswith("id: Field required; server: Field required")
    assert text.count(";") == 4  # five problems listed, nothing more to say
    body = {f"x{n}": n for n in range(6)}
    with pytest.raises(ValidationError) as caught:
        FaultNotification.model_validate(body)
    assert describe_validation_error(caught.value).endswith("; and 6 more")


def test_parse_agent_message_picks_the_model_by_routing_key() -> None:
    result = CommandResult(
        id="r-1", command_id="c-1", server="server2", outcome=Outcome.FAILED, finished_at=AT
    )
    parsed = parse_agent_message(result.to_body(), "server2.result")
    assert parsed == result
    assert result.routing_key == "server2.result"
    report = AgentReport(
        id="a-1",
        server="server3",
        active_groups=["db"],
        reason=ReportReason.HEARTBEAT,
        heartbeat_interval=5,
        sent_at=AT,
    )
    assert parse_agent_message(report.to_body(), "server3.report") == report
    assert report.routing_key == "server3.report"


@pytest.mark.parametrize(
    ("routing_key", "problem"),
    [
        ("server2.status", "neither <server>.result nor <server>.report"),
        ("server1.result", "names another server than the body"),
        ("server2.report", "breaks the report schema"),
    ],
)
def test_parse_agent_message_refuses_what_breaks_the_contract(
    routing_key: str, problem: str
) -> None:
    result = CommandResult(
        id="r-1", command_id="c-1", server="server2", outcome=Outcome.SUCCEEDED, finished_at=AT
    )
    with pytest.raises(ContractError, match=re.escape(problem)):
        parse_agent_message(result.to_body(), routing_key)


def test_agent_report_needs_a_positive_heartbeat_interval() -> None:
    with pytest.raises(ValidationError):
        AgentReport(
            id="a-1",
            server="server3",
            active_groups=[],
            reason=ReportReason.START,
            heartbeat_interval=0,
            sent_at=AT,
        )


def test_a_status_reply_about_a_server_without_a_server_group_reads_back() -> None:
    from mrwbus.messages import ServerRow, StatusReport

    report = StatusReport(
        monitors=[], groups=[], servers=[ServerRow(server="s1", server_group=None, alive=True)]
    )
    assert StatusReport.model_validate_json(report.to_body()) == report


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"[" * 50_000 + b"]" * 50_000, "at most"),  # larger than a body may be
        (b'{"id": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", "nested more than 32 deep"),
        (b'{"id": ' + b"9" * 5_000 + b"}", "a number of 5000 characters"),
    ],
    ids=["deep-and-large", "deep", "huge-number"],
)
def test_a_hostile_body_is_a_contract_error_not_a_crash(body: bytes, problem: str) -> None:
    with pytest.raises(ContractError, match=problem):
        parse_fault(body, "server1.nic")


def test_parse_message_reads_any_wire_model() -> None:
    request = ControlRequest(id="req-1", verb=ControlVerb.STATUS)
    assert parse_message(ControlRequest, request.to_body()) == request
    with pytest.raises(ContractError, match="breaks the control request schema"):
        parse_message(ControlRequest, b'{"id": "req-1", "verb": "dance"}')


def test_the_scan_before_parsing_looks_only_outside_strings() -> None:
    # Brackets and digits inside strings (escaped quotes too) are text, not nesting or numbers.
    body = json.dumps({"id": "[" * 100 + "9" * 200 + '\\"{{' + "\\"}).encode()
    assert json_object(body)["id"].startswith("[[[")
    at_limit = b'{"a": ' + b"[" * 31 + b"1" + b"]" * 31 + b', "n": ' + b"1" * 64 + b"}"
    assert json_object(at_limit)["n"] == int("1" * 64)
    with pytest.raises(ContractError, match="nested more than 32 deep"):
        json_object(b'{"a": ' + b"[" * 32 + b"]" * 32 + b"}")
    with pytest.raises(ContractError, match="a number of 65 characters"):
        json_object(b'{"n": ' + b"1" * 65 + b"}")
    with pytest.raises(ContractError, match="not valid UTF-8"):
        json_object(b'{"n": "\xff"}')


def test_a_body_of_quotes_and_backslashes_is_scanned_in_linear_time() -> None:
    # A backtracking regex over strings would take minutes on this; the scan is linear.
    body = b'{"x": "' + b'\\"' * 20_000 + b"}"
    with pytest.raises(ContractError):
        json_object(body)


def _event(kind: EventKind, monitor: str, code: str) -> Event:
    return Event(id=f"e-{code}", kind=kind, code=code, text="t", monitor=monitor, at=AT)


def test_an_event_batch_is_routed_by_every_event_and_filtered_like_a_binding() -> None:
    batch = EventBatch.of(
        [
            _event(EventKind.FAULT, "mrw1", "MRW-101"),
            _event(EventKind.STATUS, "mrw1", "MRW-102"),
            _event(EventKind.COMMAND, "mrw1", "MRW-201"),
            _event(EventKind.COMMAND, "mrw1", "MRW-202"),
        ]
    )
    assert batch.id == "e-MRW-101"
    assert batch.routing_key == "fault.mrw1"
    assert batch.other_routing_keys == ["status.mrw1", "command.mrw1"]  # each key once
    assert [event.code for event in batch.matching(kind="command")] == ["MRW-201", "MRW-202"]
    assert batch.matching(monitor="mrw2") == []
    assert len(batch.matching()) == 4
    assert EventBatch.model_validate_json(batch.to_body()) == batch


def test_an_empty_event_batch_is_refused() -> None:
    with pytest.raises(ValidationError):
        EventBatch(id="e-1", events=[])
