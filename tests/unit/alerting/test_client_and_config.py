"""Posting to Alertmanager (against a local aiohttp server) and the `alerting:` settings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from mrwbus.alerting.catalogue import AlertChange
from mrwbus.alerting.client import AlertmanagerClient
from mrwbus.config.loading import parse_config
from mrwbus.errors import AlertRejected, ConfigError

AT = datetime(2026, 11, 25, tzinfo=UTC)
ALERT = AlertChange(labels={"alertname": "X"}, annotations={}, starts_at=AT, ends_at=AT)


async def serve(answers: list[int], got: list[object]) -> TestServer:
    async def alerts(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.Response(status=answers.pop(0) if answers else 200)

    app = web.Application()
    app.router.add_post("/api/v2/alerts", alerts)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def test_a_post_is_retried_until_alertmanager_takes_it() -> None:
    got: list[object] = []
    failures: list[BaseException] = []
    server = await serve([503, 429], got)
    client = AlertmanagerClient(
        str(server.make_url("/")), max_backoff=0.01, on_failure=failures.append
    )
    try:
        await client.post([ALERT])
    finally:
        await client.close()
        await server.close()
    assert len(got) == 3 and len(failures) == 2
    assert got[-1] == [ALERT.as_json()]


async def test_a_malformed_alert_is_rejected_at_once() -> None:
    got: list[object] = []
    server = await serve([400], got)
    client = AlertmanagerClient(str(server.make_url("/")), max_backoff=0.01)
    try:
        with pytest.raises(AlertRejected, match="HTTP 400"):
            await client.post([ALERT])
    finally:
        await client.close()
        await server.close()
    assert len(got) == 1


def test_alerting_is_off_by_default_and_checked_when_on() -> None:
    assert not parse_config("servers: {s1: {}}").alerting.enabled
    on = parse_config(
        "servers: {s1: {}}\nalerting: {alertmanager_url: 'http://am:9093', labels: {cluster: a}}"
    )
    assert on.alerting.enabled and on.alerting.labels == {"cluster": "a"}
    with pytest.raises(ConfigError) as caught:
        parse_config(
            "servers: {s1: {}}\nalerting: {alertmanager_url: 'not a url', labels: {'a-b': x},"
            " retries: 3}"
        )
    text = str(caught.value)
    assert "alerting.alertmanager_url" in text
    assert "alerting.labels" in text
    assert "alerting.retries: is not a known key" in text
