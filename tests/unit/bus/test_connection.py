"""Broker URLs: one or several, logged without their passwords; what each attempt connects with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from mrwbus.bus import connection
from mrwbus.bus.connection import node_of, redact, url_list
from mrwbus.config.settings import DEFAULT_HEARTBEAT


def test_one_url_or_several() -> None:
    assert url_list("amqp://a/") == ["amqp://a/"]
    assert url_list(("amqp://a/", "amqp://b/")) == ["amqp://a/", "amqp://b/"]


def test_no_url_is_refused() -> None:
    with pytest.raises(ValueError, match="no broker URL"):
        url_list([])


def test_redact_hides_the_password() -> None:
    assert redact("amqp://user:secret@host/vhost") == "amqp://user:***@host/vhost"
    assert redact("amqp://host/") == "amqp://host/"


def test_shuffled_keeps_every_url() -> None:
    urls = [f"amqp://node{i}/" for i in range(8)]
    orders = {tuple(url_list(urls, shuffle=True)) for _ in range(50)}
    assert all(sorted(order) == sorted(urls) for order in orders)
    assert len(orders) > 1, "clients would all start on the same node"


def test_the_node_is_host_and_port_without_credentials() -> None:
    assert node_of("amqp://user:secret@10.0.0.2:5682/vhost") == "10.0.0.2:5682"
    assert node_of("amqp://broker/") == "broker:5672"


async def test_each_attempt_gets_the_password_from_its_file_and_short_heartbeats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The one connection path of every client: the password file read and the heartbeat added,
    # a URL's own ?heartbeat= left as it is.
    seen: list[URL] = []

    async def connect(url: URL, **_: Any) -> Any:
        seen.append(url)
        return object()

    monkeypatch.setattr(connection.aio_pika, "connect", connect)
    monkeypatch.delenv("MRWBUS_HEARTBEAT", raising=False)
    secret = tmp_path / "agent-server1"
    secret.write_text("pw\n")
    await connection.open_connection(f"amqp://agent-server1@a/?password_file={secret}", "t")
    await connection.open_connection("amqp://guest:guest@b/?heartbeat=20", "t")
    assert [(url.password, url.query.get("heartbeat")) for url in seen] == [
        ("pw", str(DEFAULT_HEARTBEAT)),
        ("guest", "20"),
    ]
    assert "password_file" not in seen[0].query
