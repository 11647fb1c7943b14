"""Where the broker URL comes from: the flag, the environment, or a credential file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mrwbus.errors import ConfigError
from mrwbus.settings import (
    DEFAULT_AMQP_URL,
    DEFAULT_HEARTBEAT,
    DEFAULT_REPLICAS,
    amqp_url,
    amqp_urls,
    heartbeat,
    replicas,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MRWBUS_AMQP_URL", raising=False)
    monkeypatch.delenv("MRWBUS_AMQP_URL_FILE", raising=False)


def test_flag_then_environment_then_file_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert amqp_url() == DEFAULT_AMQP_URL
    credential = tmp_path / "amqp-url"
    credential.write_text("amqp://svc:from-file@broker/\n")
    monkeypatch.setenv("MRWBUS_AMQP_URL_FILE", str(credential))
    assert amqp_url() == "amqp://svc:from-file@broker/"
    monkeypatch.setenv("MRWBUS_AMQP_URL", "amqp://svc:from-env@broker/")
    assert amqp_url() == "amqp://svc:from-env@broker/"
    assert amqp_url("amqp://svc:from-flag@broker/") == "amqp://svc:from-flag@broker/"


@pytest.mark.parametrize(("content", "problem"), [(None, "cannot be read"), ("\n", "is empty")])
def test_a_bad_credential_file_is_one_sentence_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None, problem: str
) -> None:
    credential = tmp_path / "amqp-url"
    if content is not None:
        credential.write_text(content)
    monkeypatch.setenv("MRWBUS_AMQP_URL_FILE", str(credential))
    with pytest.raises(ConfigError) as error:
        amqp_url()
    assert str(error.value).startswith(f"{credential} (MRWBUS_AMQP_URL_FILE): {problem}")


def test_several_urls_from_repeated_flags_or_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    assert amqp_urls(["amqp://a/", "amqp://b/,amqp://c/"]) == [
        "amqp://a/",
        "amqp://b/",
        "amqp://c/",
    ]
    monkeypatch.setenv("MRWBUS_AMQP_URL", "amqp://a/, amqp://b/,")
    assert amqp_urls(None) == ["amqp://a/", "amqp://b/"]
    assert amqp_urls("amqp://x/") == ["amqp://x/"]


def test_no_url_among_the_commas_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MRWBUS_AMQP_URL", " , ")
    with pytest.raises(ConfigError, match="names no broker URL"):
        amqp_urls(None)


@pytest.mark.parametrize(
    ("name", "read"), [("MRWBUS_HEARTBEAT", heartbeat), ("MRWBUS_REPLICAS", replicas)]
)
def test_heartbeat_and_replicas_are_whole_numbers(
    monkeypatch: pytest.MonkeyPatch, name: str, read: Callable[[], int]
) -> None:
    monkeypatch.delenv(name, raising=False)
    assert read() in (DEFAULT_HEARTBEAT, DEFAULT_REPLICAS)
    monkeypatch.setenv(name, "5")
    assert read() == 5
    for bad in ("0", "2.5", "soon"):
        monkeypatch.setenv(name, bad)
        with pytest.raises(ConfigError, match=f"{name}.*whole number of 1 or more"):
            read()
