"""Broker URLs: one or several, logged without their passwords."""

from __future__ import annotations

import pytest

from mrwbus.bus.connection import node_of, redact, url_list


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
