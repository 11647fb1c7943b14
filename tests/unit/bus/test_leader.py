"""When a standby calls the active replica silent, on a clock of the test's own; and where it
asks the broker to close that replica's connection."""

from __future__ import annotations

import pytest

from mrwbus.bus import leader
from mrwbus.bus.leader import BEAT_INTERVAL, CHECK_EVERY, LeaderWatch, management_base


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(leader.time, "monotonic", fake)
    return fake


def run_for(watch: LeaderWatch, clock: Clock, seconds: float) -> bool:
    """Check every CHECK_EVERY s for `seconds`, as the standby's loop does; silent at the end?"""
    silent = False
    for _ in range(round(seconds / CHECK_EVERY)):
        clock.now += CHECK_EVERY
        silent = watch.leader_silent(CHECK_EVERY)
    return silent


def test_no_beat_ever_heard_is_no_silence(clock: Clock) -> None:
    watch = LeaderWatch(silence=2.0)
    assert not run_for(watch, clock, 10)


def test_beats_that_stop_for_the_silence_make_the_leader_silent(clock: Clock) -> None:
    watch = LeaderWatch(silence=2.0)
    watch.heard_at = clock.now
    assert not run_for(watch, clock, 1.5)
    assert run_for(watch, clock, 0.6)


def test_a_pause_of_the_standby_itself_starts_the_count_again(clock: Clock) -> None:
    watch = LeaderWatch(silence=2.0)
    watch.heard_at = clock.now
    clock.now += 3.0  # the standby slept through it: the beats may be waiting in its socket
    assert not watch.leader_silent(CHECK_EVERY)
    assert not run_for(watch, clock, 1.5)
    assert run_for(watch, clock, 0.6)


def test_a_leader_paused_for_a_second_is_not_silent(clock: Clock) -> None:
    watch = LeaderWatch(silence=2.0)
    watch.heard_at = clock.now
    assert not run_for(watch, clock, 1.0 + BEAT_INTERVAL)


def test_the_management_api_is_the_amqp_host_on_its_default_port_unless_given() -> None:
    base, auth, vhost = management_base(None, "amqp://svc:secret@broker1:5672/prod")
    assert base == "http://broker1:15672/api"
    assert auth["Authorization"].startswith("Basic ")
    assert vhost == "prod"
    base, _, vhost = management_base("https://admin:pw@mgmt:443/", "amqp://svc:s@broker1/")
    assert base == "https://mgmt/api"
    assert vhost == "/"
