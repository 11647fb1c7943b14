"""What the service takes in, by kind, and what it says back about an input it cannot use.

The service's three consumers (faults, agents' results and reports, operators' control
requests) share one shape (`Service._take`): parse, judge the verified sender (`senders`),
decide, journal and publish, ack. This module holds the pieces that differ by kind.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from pydantic import TypeAdapter

from mrwbus.config.model import ClusterConfig
from mrwbus.messages import (
    AgentReport,
    CommandResult,
    ControlRequest,
    FaultNotification,
    MessageId,
    ReportRequest,
    new_id,
    parse_message,
)

Input = TypeVar("Input", FaultNotification, CommandResult | AgentReport, ControlRequest)
"""A message the service consumes."""

_MESSAGE_ID: TypeAdapter[str] = TypeAdapter(MessageId)


def parse_control(body: bytes, routing_key: str) -> ControlRequest:
    """A control request off the wire (its routing key is judged with its sender)."""
    del routing_key
    return parse_message(ControlRequest, body)


def reply_id(message_id: str | None) -> str:
    """The id a refusal answers with: the request's own, if it is a usable one."""
    try:
        return _MESSAGE_ID.validate_python(message_id)
    except ValueError:
        return new_id()


def report_requests(config: ClusterConfig, now: datetime) -> list[ReportRequest]:
    """One `ReportRequest` per server: after its start the service asks every agent."""
    return [ReportRequest(id=new_id(), server=server, asked_at=now) for server in config.servers]
