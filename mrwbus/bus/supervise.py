"""Every long-running task of a daemon (the relay's sources and loops, the agent's probes and
reports) runs under `supervise`: none dies unnoticed.

An exception that ends a task (or a task that ends by itself before the stop) is logged with
its cause and traceback, counted (`/metrics`), kept as `last_error` (`/healthz`), and the task
is started again after a delay: 5 s for a source (`SOURCE_RESTART`), 0.2 s doubling to 5 s for
the relay's own tasks (the debounce, the delivery), back to 0.2 s once a task ran `STEADY` s.
A stop (`stop` set, or the task cancelled) ends the supervision at once, during a run or a
wait alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mrwbus.bus.health import Health

log = logging.getLogger(__name__)

SOURCE_RESTART = 5.0
"""Seconds before a source that failed (netlink socket error, unreadable log) starts again."""

FIRST_RESTART = 0.2
MOST_RESTART = 5.0
STEADY = 5.0
"""A task that ran this long before it failed starts again after `FIRST_RESTART`."""


def fixed(seconds: float) -> Callable[[int], float]:
    return lambda _failures: seconds


def doubling(failures: int) -> float:
    """The wait after the `failures`-th failure in a row: 0.2 s doubling to 5 s."""
    return min(FIRST_RESTART * 2.0 ** max(failures - 1, 0), MOST_RESTART)


@dataclass
class Supervision:
    """What `/healthz` and `/metrics` show of the supervised tasks."""

    health: Health = field(default_factory=Health)
    failures: Counter[str] = field(default_factory=Counter)
    """Times a task failed and was started again, by task."""
    up: dict[str, bool] = field(default_factory=dict)
    """Task -> running now (False while it waits to start again)."""

    async def supervise(
        self,
        name: str,
        body: Callable[[], Awaitable[None]],
        stop: asyncio.Event,
        delay: Callable[[int], float] = doubling,
    ) -> None:
        """Run `body` until `stop` is set, starting it again after each failure."""
        in_row = 0
        while not stop.is_set():
            self.up[name] = True
            started = time.monotonic()
            cause: BaseException | None = None
            try:
                await body()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                cause = exc
            if stop.is_set():
                return
            self.up[name] = False
            in_row = 1 if time.monotonic() - started >= STEADY else in_row + 1
            wait = delay(in_row)
            self.failures[name] += 1
            what = f"{type(cause).__name__}: {cause}" if cause is not None else "it ended"
            self.health.last_error = f"{name} failed ({what}); starting it again in {wait:g}s"
            log.error("%s failed (%s); starting it again in %gs", name, what, wait, exc_info=cause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
