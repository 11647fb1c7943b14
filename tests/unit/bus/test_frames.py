"""The hand-written publish frames are byte for byte what pamqp (aiormq's encoder) writes."""

from __future__ import annotations

import pytest
from pamqp import commands, frame, header
from pamqp.body import ContentBody

from mrwbus.bus.frames import (
    ack_frame,
    encoded_properties,
    json_properties,
    publish_frames,
    shortstr,
)


def pamqp_publish(
    channel: int,
    exchange: str,
    routing_key: str,
    mandatory: bool,
    properties: commands.Basic.Properties,
    body: bytes,
    max_body_frame: int,
) -> bytes:
    frames: list[object] = [
        commands.Basic.Publish(exchange=exchange, routing_key=routing_key, mandatory=mandatory),
        header.ContentHeader(properties=properties, body_size=len(body)),
    ]
    frames += [
        ContentBody(body[start : start + max_body_frame])
        for start in range(0, len(body), max_body_frame)
    ]
    return b"".join(frame.marshal(item, channel) for item in frames)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("message_id", "message_type", "user_id"),
    [
        ("3f0c6a8e-0000-5000-8000-000000000001", "RecoveryCommand", "mrwbus-service"),
        ("e-1", "Event", None),
        (None, "Event", "guest"),
        ("ü-id", "", None),
    ],
)
def test_json_properties_are_pamqps(
    message_id: str | None, message_type: str, user_id: str | None
) -> None:
    properties = commands.Basic.Properties(
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=2,
        message_id=message_id,
        message_type=message_type or None,
        user_id=user_id,
    )
    assert json_properties(message_id, message_type, user_id) == properties.marshal()


@pytest.mark.parametrize("mandatory", [True, False])
@pytest.mark.parametrize("size", [0, 1, 100, 131_064, 131_065, 400_000])
def test_publish_frames_are_pamqps(mandatory: bool, size: int) -> None:
    properties = commands.Basic.Properties(
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=2,
        message_id="m-1",
        message_type="Event",
        user_id="mrwbus-service",
    )
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    ours = publish_frames(
        7,
        "mrwbus.events",
        "mrw.error.server1",
        mandatory,
        json_properties("m-1", "Event", "mrwbus-service"),
        body,
        131_064,
    )
    assert ours == pamqp_publish(
        7, "mrwbus.events", "mrw.error.server1", mandatory, properties, body, 131_064
    )


def test_properties_with_headers_go_through_pamqp() -> None:
    properties = commands.Basic.Properties(
        content_type="application/json", delivery_mode=2, headers={"x-mrwbus-first": 3}
    )
    ours = publish_frames(
        1, "", "mrwbus.journal", False, encoded_properties(properties), b"{}", 4096
    )
    assert ours == pamqp_publish(1, "", "mrwbus.journal", False, properties, b"{}", 4096)


def test_a_short_string_longer_than_255_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="255 bytes"):
        shortstr("x" * 256)


def test_ack_frame_is_pamqps() -> None:
    expected = frame.marshal(commands.Basic.Ack(delivery_tag=2**40 + 7, multiple=False), 3)
    assert ack_frame(3, 2**40 + 7) == expected


def test_json_properties_with_bcc_are_pamqps() -> None:
    keys = ["status.mrw1", "command.mrw1", "ü.x"]
    properties = commands.Basic.Properties(
        content_type="application/json",
        content_encoding="utf-8",
        headers={"BCC": keys},
        delivery_mode=2,
        message_id="e-1",
        message_type="EventBatch",
        user_id="mrwbus-service",
    )
    assert json_properties("e-1", "EventBatch", "mrwbus-service", keys) == properties.marshal()
