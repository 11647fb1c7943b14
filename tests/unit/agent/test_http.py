"""`mrwbus agent --http`: /healthz and /metrics of an agent, served for real on loopback."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp

from mrwbus.agent.agent_http import families, health, serve_agent_http
from mrwbus.agent.runtime import Agent
from mrwbus.telemetry.exposition import render_text


def agent(tmp_path: Path) -> Agent:
    return Agent("db1", "amqp://unused", tmp_path, initial_groups=["pg"])


def test_an_agent_that_does_not_consume_is_degraded(tmp_path: Path) -> None:
    code, body = health(agent(tmp_path))
    assert code == 503 and body["status"] == "degraded" and body["active_groups"] == ["pg"]


def test_metrics_show_commands_by_outcome_and_handler_durations(tmp_path: Path) -> None:
    subject = agent(tmp_path)
    subject.stats.command_done("restart", "succeeded", 0.3)
    subject.stats.command_done("failover.start", "failed", 12.0)
    subject.stats.reported()
    text = render_text(families(subject))
    assert 'mrwbus_agent_commands_total{outcome="succeeded"} 1.0' in text
    assert 'mrwbus_agent_commands_total{outcome="failed"} 1.0' in text
    assert 'mrwbus_agent_handler_seconds_bucket{handler="restart",le="0.5"} 1.0' in text
    assert 'mrwbus_agent_handler_seconds_count{handler="failover.start"} 1.0' in text
    assert "mrwbus_agent_reports_total 1.0" in text
    assert text.count("# TYPE mrwbus_agent_handler_seconds histogram") == 1


async def test_both_endpoints_are_served(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runner = await serve_agent_http(agent(tmp_path), "127.0.0.1", port)
    try:
        async with aiohttp.ClientSession() as client:
            async with client.get(f"http://127.0.0.1:{port}/healthz") as reply:
                assert reply.status == 503
                assert (await reply.json())["server"] == "db1"
            async with client.get(f"http://127.0.0.1:{port}/metrics") as reply:
                assert reply.status == 200
                assert "mrwbus_agent_consuming 0.0" in await reply.text()
    finally:
        await runner.cleanup()
