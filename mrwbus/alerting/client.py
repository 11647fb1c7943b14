"""Posting alerts to Alertmanager's v2 API (`POST /api/v2/alerts`), with retries.

A post that fails for a reason that may pass (connection refused, timeout, 5xx, 429) is
retried with exponential back-off (tenacity) until it succeeds or the caller is cancelled;
a 4xx is an `AlertRejected` at once. The transport is an aiohttp session the caller may give
(tests give one pointed at their own server).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from mrwbus.alerting.catalogue import AlertChange
from mrwbus.errors import AlertmanagerUnavailable, AlertRejected

log = logging.getLogger(__name__)

ALERTS_PATH = "/api/v2/alerts"


_RETRIED = (AlertmanagerUnavailable, aiohttp.ClientError, TimeoutError)


class AlertmanagerClient:
    """Posts alerts to one Alertmanager; `on_failure` is told each failed attempt."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        max_backoff: float = 60.0,
        on_failure: Callable[[BaseException], None] = lambda _exc: None,
    ) -> None:
        self.url = base_url.rstrip("/") + ALERTS_PATH
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.on_failure = on_failure
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, alerts: Sequence[AlertChange]) -> None:
        """Post until Alertmanager accepted them; `AlertRejected` if it refuses them."""
        if not alerts:
            return

        def failed(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            if error is not None:
                self.on_failure(error)
                log.warning(
                    "Alertmanager at %s did not take %d alert(s) (%s); retrying in %.1f s",
                    self.url,
                    len(alerts),
                    str(error) or type(error).__name__,
                    state.next_action.sleep if state.next_action else 0.0,
                )

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_RETRIED),
            wait=wait_exponential(multiplier=0.5, max=self.max_backoff),
            before_sleep=failed,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                await self._post_once(alerts)

    async def _post_once(self, alerts: Sequence[AlertChange]) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        body = [alert.as_json() for alert in alerts]
        async with asyncio.timeout(self.timeout):
            async with self._session.post(self.url, json=body) as response:
                text = (await response.text())[:500]
                if response.status == 429 or response.status >= 500:
                    raise AlertmanagerUnavailable(f"HTTP {response.status}: {text}")
                if response.status >= 400:
                    error = AlertRejected(
                        f"Alertmanager refused the alerts: HTTP {response.status}: {text}"
                    )
                    self.on_failure(error)
                    raise error
