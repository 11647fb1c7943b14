"""Broker URLs: from the flag, the environment or a credential file; the password from a file,
TLS files from options, nothing secret in the URL."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from yarl import URL

from mrwbus.config.settings import (
    DEFAULT_AMQP_URL,
    DEFAULT_HEARTBEAT,
    DEFAULT_REPLICAS,
    amqp_url,
    amqp_urls,
    connection_parameters,
    heartbeat,
    replicas,
)
from mrwbus.errors import ConfigError, MrwbusError


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "MRWBUS_AMQP_URL",
        "MRWBUS_AMQP_URL_FILE",
        "MRWBUS_AMQP_PASSWORD_FILE",
        "MRWBUS_TLS_CA",
        "MRWBUS_TLS_CERT",
        "MRWBUS_TLS_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


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


def test_the_password_is_read_from_its_file_only_when_connecting(tmp_path: Path) -> None:
    secret = tmp_path / "relay-server1"
    secret.write_text("s3cret-Pa55\n")
    url = amqp_url("amqp://relay-server1@broker/prod", password_file=str(secret))
    assert "s3cret" not in url
    parameters = connection_parameters(url)
    assert parameters.url.password == "s3cret-Pa55"
    assert parameters.user == "relay-server1"
    assert "password_file" not in parameters.url.query
    assert "s3cret" not in parameters.redacted and "s3cret" not in repr(parameters)


def test_the_environment_names_the_password_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "viewer"
    secret.write_text("pw")
    monkeypatch.setenv("MRWBUS_AMQP_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("MRWBUS_AMQP_URL", "amqp://viewer@broker/")
    assert connection_parameters(amqp_url()).url.password == "pw"


def test_a_missing_or_empty_password_file_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(MrwbusError, match="cannot read the password file"):
        connection_parameters(amqp_url("amqp://u@h/", password_file=str(tmp_path / "none")))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(MrwbusError, match="is empty"):
        connection_parameters(amqp_url("amqp://u@h/", password_file=str(tmp_path / "empty")))


def test_amqps_verifies_the_peer_by_default() -> None:
    parameters = connection_parameters(amqp_url("amqps://u:p@broker/"))
    assert parameters.ssl_context is not None
    assert parameters.ssl_context.verify_mode is ssl.CERT_REQUIRED
    assert parameters.ssl_context.check_hostname


def test_tls_files_on_a_plain_url_are_a_mistake() -> None:
    with pytest.raises(MrwbusError, match="amqps"):
        connection_parameters(amqp_url("amqp://u:p@broker/", tls_ca="/etc/ca.pem"))


def test_unreadable_tls_files_are_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(MrwbusError, match="cannot load the TLS files"):
        connection_parameters(amqp_url("amqps://u:p@b/", tls_ca=str(tmp_path / "missing.pem")))


def test_without_options_the_url_is_unchanged() -> None:
    assert amqp_url("amqp://guest:guest@localhost/") == "amqp://guest:guest@localhost/"


def test_each_of_several_urls_gets_the_files(tmp_path: Path) -> None:
    secret = tmp_path / "relay-server1"
    secret.write_text("pw")
    urls = amqp_url("amqp://relay-server1@a/,amqp://relay-server1@b/", password_file=str(secret))
    assert [connection_parameters(url).url.password for url in urls.split(",")] == ["pw", "pw"]


def test_a_url_file_takes_the_password_file_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "url").write_text("amqp://mrwbus-service@broker/\n")
    (tmp_path / "password").write_text("pw\n")
    monkeypatch.setenv("MRWBUS_AMQP_URL_FILE", str(tmp_path / "url"))
    monkeypatch.setenv("MRWBUS_AMQP_PASSWORD_FILE", str(tmp_path / "password"))
    assert connection_parameters(amqp_url()).url.password == "pw"


def test_each_of_several_flags_gets_the_files(tmp_path: Path) -> None:
    secret = tmp_path / "relay-server1"
    secret.write_text("pw")
    urls = amqp_urls(
        ["amqp://relay-server1@a/", "amqp://relay-server1@b/,amqp://relay-server1@c/"],
        password_file=str(secret),
    )
    assert [connection_parameters(url).url.password for url in urls] == ["pw"] * 3
    assert [URL(url).host for url in urls] == ["a", "b", "c"]
