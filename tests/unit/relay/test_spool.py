"""The spool: what is added stays until done, in order, across a reopen; torn lines ignored."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from mrwbus.messages import FaultNotification
from mrwbus.relay.spool import Spool, encode, replay


def fault(number: int, state: str = "error") -> FaultNotification:
    return FaultNotification.model_validate(
        {
            "id": f"fault-{number}",
            "server": "server1",
            "category": "NIC",
            "device": f"eth{number}",
            "occurred_at": datetime(2026, 11, 25, 20, 0, number, tzinfo=UTC),
            "state": state,
        }
    )


def test_replay_keeps_order_drops_done_and_remembers_levels() -> None:
    lines = [
        encode({"add": fault(1).model_dump(mode="json"), "level": ["nic/eth1", False]}),
        encode({"add": fault(2).model_dump(mode="json")}),
        encode({"add": fault(3).model_dump(mode="json"), "level": ["nic/eth3", False]}),
        encode({"done": "fault-2"}),
        encode({"add": fault(1).model_dump(mode="json")}),  # the same id again: kept once
    ]
    state = replay(line.decode() for line in lines)
    assert list(state.pending) == ["fault-1", "fault-3"]
    assert state.levels == {"nic/eth1": False, "nic/eth3": False}
    assert state.torn == 0


def test_a_line_cut_short_by_a_crash_is_skipped() -> None:
    whole = encode({"add": fault(1).model_dump(mode="json")}).decode()
    state = replay([whole, whole[:30], "[1, 2]"])
    assert list(state.pending) == ["fault-1"]
    assert state.torn == 2


def test_a_reopened_spool_holds_what_was_not_done(tmp_path: Path) -> None:
    path = tmp_path / "relay" / "server1.spool"
    spool = Spool(path)
    assert spool.add(fault(1), ("nic/eth1", False))
    assert spool.add(fault(2))
    assert not spool.add(fault(2)), "the same id is not kept twice"
    spool.done("fault-1")
    spool.close()

    again = Spool(path)
    assert [f.id for f in again.pending] == ["fault-2"]
    assert again.pending[0] == fault(2)
    assert again.levels == {"nic/eth1": False}
    again.done("fault-2")
    again.close()
    assert replay(path.read_text().splitlines()).pending == {}
    assert len(path.read_text().splitlines()) == 1, "compacted to the levels alone"
