"""Debouncing: only a change that held for the delay is a transition, once."""

from __future__ import annotations

from mrwbus.relay.debounce import Debouncer


def test_a_change_that_holds_becomes_one_transition() -> None:
    debouncer = Debouncer(2.0)
    debouncer.observe("nic/eth0", False, 100.0, "carrier 0")
    assert debouncer.due(101.9) == []
    debouncer.observe("nic/eth0", False, 101.0)  # seen again: still the change of 100.0
    [transition] = debouncer.due(102.0)
    assert (transition.key, transition.healthy, transition.since) == ("nic/eth0", False, 100.0)
    assert transition.detail == "carrier 0"
    assert debouncer.due(200.0) == []
    debouncer.observe("nic/eth0", False, 300.0)
    assert debouncer.due(400.0) == [], "a level already reported is not reported again"


def test_a_flap_shorter_than_the_delay_is_nothing() -> None:
    debouncer = Debouncer(2.0)
    debouncer.observe("nic/eth0", False, 100.0)
    debouncer.observe("nic/eth0", True, 101.0)
    assert debouncer.due(110.0) == []
    assert debouncer.next_due() is None


def test_recovery_is_debounced_too_and_a_new_drop_restarts_the_clock() -> None:
    debouncer = Debouncer(2.0)
    debouncer.observe("fc/host3", False, 0.0)
    assert [t.healthy for t in debouncer.due(2.0)] == [False]
    debouncer.observe("fc/host3", True, 10.0)
    debouncer.observe("fc/host3", False, 11.0)  # down again before the recovery held
    debouncer.observe("fc/host3", True, 12.0)
    assert debouncer.next_due() == 14.0
    [recovered] = debouncer.due(14.0)
    assert (recovered.healthy, recovered.since) == (True, 12.0)


def test_remembered_levels_stand_and_devices_are_independent() -> None:
    debouncer = Debouncer(1.0, reported={"nic/eth0": False})
    debouncer.observe("nic/eth0", False, 0.0)
    debouncer.observe("nic/eth1", False, 0.5)
    debouncer.observe("nic/eth2", False, 0.2)
    assert [t.key for t in debouncer.due(5.0)] == ["nic/eth2", "nic/eth1"], "oldest first"
    assert debouncer.reported == {"nic/eth0": False, "nic/eth1": False, "nic/eth2": False}
