"""The in-process feed of published events: recent ones kept, listeners fed, a stalled one
dropped from rather than waited for."""

from __future__ import annotations

from mrwbus.core import events
from mrwbus.messages import Event, utc_now
from mrwbus.service.event_feed import LISTENER_QUEUE, RECENT_EVENTS, EventFeed


def _event(index: int) -> Event:
    return events.MONITOR_SUSPENDED.make(
        at=utc_now(), cause=f"c{index}", monitor="mrw1", by="operator"
    )


async def test_listeners_get_every_event_and_the_feed_keeps_the_recent_ones() -> None:
    feed = EventFeed()
    queue = feed.listen()
    for index in range(RECENT_EVENTS + 5):
        feed.published(_event(index))
    assert len(feed.recent) == RECENT_EVENTS
    assert feed.recent[-1].id == _event(RECENT_EVENTS + 4).id  # ids follow the cause
    assert queue.qsize() == RECENT_EVENTS + 5
    feed.unlisten(queue)
    feed.published(_event(-1))
    assert queue.qsize() == RECENT_EVENTS + 5


async def test_a_stalled_listener_loses_events_instead_of_blocking() -> None:
    feed = EventFeed()
    queue = feed.listen()
    for index in range(LISTENER_QUEUE + 10):
        feed.published(_event(index))
    assert queue.qsize() == LISTENER_QUEUE
