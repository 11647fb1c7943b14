"""Broker URLs: one or several, logged without their passwords."""

from __future__ import annotations

import pytest

from mrwbus.bus.connection import redact, url_list


def test_one_url_or_several() -> None:
    assert url_list("amqp://a/") == ["amqp://a/"]
    assert url_list(("amqp://a/", "amqp://b/")) == ["amqp://a/", "amqp://b/"]


def test_no_url_is_refused() -> None:
    with pytest.raises(ValueError, match="no broker URL"):
        url_list([])


def test_redact_hides_the_password() -> None:
    assert redact("amqp://user:secret@host/vhost") == "amqp://user:***@host/vhost"
    assert redact("amqp://host/") == "amqp://host/"
