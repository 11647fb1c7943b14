"""The events this replica published, for whoever watches them in-process: the status page's
live stream and the recent-events list. Pure bookkeeping, no I/O."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from mrwbus.messages import Event

RECENT_EVENTS = 200
"""Events kept in memory for the status page."""

LISTENER_QUEUE = 1000
"""Events a listener may fall behind by; a stalled viewer then loses events, not the service."""


class EventFeed:
    def __init__(self) -> None:
        self.recent: deque[Event] = deque(maxlen=RECENT_EVENTS)
        self._listeners: set[asyncio.Queue[Event]] = set()

    def listen(self) -> asyncio.Queue[Event]:
        """A queue that receives every event once the broker confirmed it; `unlisten` when done."""
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=LISTENER_QUEUE)
        self._listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[Event]) -> None:
        self._listeners.discard(queue)

    def published(self, event: Event) -> None:
        self.recent.append(event)
        for listener in self._listeners:
            with contextlib.suppress(asyncio.QueueFull):
                listener.put_nowait(event)
