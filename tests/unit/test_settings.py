"""Where the broker URL comes from: the flag, the environment, or a credential file."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrwbus.errors import ConfigError
from mrwbus.settings import DEFAULT_AMQP_URL, amqp_url


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
