"""The history stream's messages as encoded, the fault index's digests, and the recent records
the status page shows (kept encoded, decoded when asked)."""

from __future__ import annotations

import base64

from mrwbus.bus.history_stream import RecentHistory, decode, encode, fault_digest, holds


def _records(first: int, count: int) -> list[dict[str, object]]:
    return [{"k": "tick", "n": n} for n in range(first, first + count)]


def test_a_message_decodes_to_its_records_and_an_unknown_version_to_none() -> None:
    records = _records(0, 3)
    assert decode(encode(records, "s1", 7)) == records
    assert decode(b'{"v": 99, "records": [{"k": "tick"}]}') == []


def test_the_index_names_a_fault_by_its_digest_at_a_digest_boundary_only() -> None:
    digests = fault_digest("f-1") + fault_digest("f-2")
    ids = base64.b64encode(digests).decode()
    assert holds(ids, "f-1") and holds(ids, "f-2")
    assert not holds(ids, "f-3")
    straddling = base64.b64encode(digests[2:6]).decode()  # bytes of both, at no boundary
    assert not holds(straddling, "f-1") and not holds(straddling, "f-2")


def test_recent_history_keeps_at_least_the_newest_records_newest_first() -> None:
    recent = RecentHistory(records=5)
    for first in range(0, 12, 3):  # four messages of three records: 0-2, 3-5, 6-8, 9-11
        recent.add(encode(_records(first, 3)), 3)
    newest = [record["n"] for record in recent.newest_first()]
    assert newest == [11, 10, 9, 8, 7, 6]  # whole messages: at least 5, the oldest dropped
    assert list(RecentHistory(records=5).newest_first()) == []
