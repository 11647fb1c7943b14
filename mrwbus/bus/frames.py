"""AMQP 0-9-1 frames of one publish, encoded by hand for the hot path.

pamqp validates and encodes every field of every frame through generic code; a service that
publishes a command and its events for each fault spent a tenth of its time there. These
functions write the same bytes (tests/unit/test_frames.py compares them with pamqp's) for the
one shape the service publishes (`basic.publish`, a content header, and the body frames) and
the `basic.ack` of what it consumed.
"""

from __future__ import annotations

import struct

from pamqp import commands

FRAME_METHOD, FRAME_HEADER, FRAME_BODY = 1, 2, 3
FRAME_END = b"\xce"
_FRAME = struct.Struct(">BHI")
_PUBLISH = struct.pack(">HHH", 60, 40, 0)  # class basic, method publish, the reserved ticket
_HEADER = struct.Struct(">HHQ")  # class basic, weight 0, body size
_ACK = struct.Struct(">HHQB")  # class basic, method ack, delivery tag, multiple

# Property flags, in the order the properties are encoded (AMQP 0-9-1, basic class).
_CONTENT_TYPE, _CONTENT_ENCODING, _HEADERS, _DELIVERY_MODE = 1 << 15, 1 << 14, 1 << 13, 1 << 12
_MESSAGE_ID, _TYPE, _USER_ID = 1 << 7, 1 << 5, 1 << 4
_PERSISTENT = 2


def shortstr(value: str) -> bytes:
    data = value.encode()
    if len(data) > 255:
        raise ValueError(f"an AMQP short string holds at most 255 bytes, not {len(data)}")
    return bytes((len(data),)) + data


_JSON_FLAGS = _CONTENT_TYPE | _CONTENT_ENCODING | _DELIVERY_MODE
_JSON_TYPE = shortstr("application/json") + shortstr("utf-8")
_DELIVERY = bytes((_PERSISTENT,))
_LONG = struct.Struct(">I")


def _bcc_table(routing_keys: list[str]) -> bytes:
    """A headers table holding only `BCC`: an array of long strings (sender-selected
    distribution: the broker routes by each key too, and strips the header)."""
    items = b"".join(b"S" + _LONG.pack(len(data)) + data for data in map(str.encode, routing_keys))
    field = shortstr("BCC") + b"A" + _LONG.pack(len(items)) + items
    return _LONG.pack(len(field)) + field


def json_properties(
    message_id: str | None,
    message_type: str,
    user_id: str | None,
    bcc: list[str] | None = None,
) -> bytes:
    """A persistent JSON message's properties, as a content header carries them (flags, then
    the values): content type, encoding, delivery mode 2, the id, type and sender given, and
    the routing keys to copy it to (`bcc`)."""
    flags = _JSON_FLAGS
    fields = [_JSON_TYPE]
    if bcc:
        flags |= _HEADERS
        fields.append(_bcc_table(bcc))
    fields.append(_DELIVERY)
    if message_id:
        flags |= _MESSAGE_ID
        fields.append(shortstr(message_id))
    if message_type:
        flags |= _TYPE
        fields.append(shortstr(message_type))
    if user_id:
        flags |= _USER_ID
        fields.append(shortstr(user_id))
    return flags.to_bytes(2, "big") + b"".join(fields)


def encoded_properties(properties: commands.Basic.Properties) -> bytes:
    """Any properties (headers, say), encoded by pamqp: for the publishes off the hot path."""
    return properties.marshal()


def _frame(kind: int, channel: int, payload: bytes) -> bytes:
    return _FRAME.pack(kind, channel, len(payload)) + payload + FRAME_END


def publish_frames(
    channel: int,
    exchange: str,
    routing_key: str,
    mandatory: bool,
    properties: bytes,
    body: bytes,
    max_body_frame: int,
) -> bytes:
    """The frames of one publish: `basic.publish`, the content header with `properties` (from
    `json_properties` or `encoded_properties`), and the body in frames of at most
    `max_body_frame` bytes."""
    method = (
        _PUBLISH + shortstr(exchange) + shortstr(routing_key) + (b"\x01" if mandatory else b"\x00")
    )
    parts = [
        _frame(FRAME_METHOD, channel, method),
        _frame(FRAME_HEADER, channel, _HEADER.pack(60, 0, len(body)) + properties),
    ]
    for start in range(0, len(body), max_body_frame):
        parts.append(_frame(FRAME_BODY, channel, body[start : start + max_body_frame]))
    return b"".join(parts)


def ack_frame(channel: int, delivery_tag: int) -> bytes:
    """`basic.ack` of one delivery (not `multiple`: faults finish out of order)."""
    return _frame(FRAME_METHOD, channel, _ACK.pack(60, 80, delivery_tag, 0))
