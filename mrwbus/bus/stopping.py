"""Stopping a background task within a bounded time, whatever the libraries under it do.

A cancellation can be lost: Python 3.11's `asyncio.wait_for` swallows it when the call it
waits for finishes at the same moment, and a task that then loops on never ends. A stop that
can hang is a systemd unit that needs SIGKILL, so every background task of a session is
stopped through `cancel_within`: cancelled again until it ends, for at most `grace` seconds.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

STOP_GRACE = 5.0
"""Seconds a cancelled background task may take to end before it is left behind."""

_RETRY = 1.0
"""Seconds a cancelled task has to clean up before it is cancelled again."""


async def cancel_within(task: asyncio.Task[object], grace: float = STOP_GRACE) -> None:
    """Cancel `task` and wait until it ended, cancelling again while it runs on; after `grace`
    seconds it is logged and left (its exception, if any, is consumed either way)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while not task.done():
        task.cancel()
        remaining = deadline - loop.time()
        if remaining <= 0:
            log.error(
                "task %s did not end within %.1f s of its cancellation", task.get_name(), grace
            )
            return
        await asyncio.wait({task}, timeout=min(_RETRY, remaining))
    if not task.cancelled() and task.exception() is not None:
        log.debug("task %s ended with %r", task.get_name(), task.exception())
