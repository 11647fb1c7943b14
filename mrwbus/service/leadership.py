"""Standing by until this replica leads: the leader lock, tried when it may have come free.

The exclusive-queue lock (`bus.journal_stream.try_lead`) is the only guard: a standby leads
only once the broker closed the old holder's connection. The leader token and the active
replica's beats (`bus.leader`) only tell a standby when to try it, and a silent holder is
closed through the management API instead of after the broker's missed heartbeats.
"""

from __future__ import annotations

import asyncio
import logging

from mrwbus.bus.health import Health
from mrwbus.bus.journal_stream import try_lead
from mrwbus.bus.leader import LeaderWatch, close_lock_owner
from mrwbus.bus.session import Session, SessionLost
from mrwbus.config.settings import ServiceSettings

log = logging.getLogger(__name__)


async def wait_for_leadership(
    session: Session, stop: asyncio.Event, health: Health, settings: ServiceSettings
) -> bool:
    """Standby until this replica holds the leader lock; False if told to stop first.

    It tries the lock every `standby_poll` seconds, and at once when the leader token comes
    (its holder is gone) or when the active replica's beats stop for `LEADER_SILENCE`
    seconds (after the broker was asked to close the silent replica's connection): see
    `bus.leader`."""
    health.role = "standby"
    connection = session.connection
    watch = LeaderWatch()
    await watch.listen(connection)  # for the whole session: an active replica keeps the token

    async def fence() -> None:
        closed = await close_lock_owner(settings.management_url, session.url)
        log.warning(
            "the active replica sent no beat for %g s; its connection %s",
            watch.silence,
            f"{closed!r} closed by the broker" if closed else "left to the heartbeats",
        )

    while not stop.is_set():
        if await try_lead(connection) is not None:
            health.role = "active"
            return True
        if connection.is_closed:
            raise SessionLost("the connection closed while standing by")
        await watch.chance(stop, settings.standby_poll, fence)
    return False
