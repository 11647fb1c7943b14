"""Exit codes tell a script what happened: 1 refused or failed, 3 broker unreachable, and a bug
is 70, never 2 (which argparse keeps for usage errors)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest

from mrwbus import cli
from mrwbus.cli.common import EXIT_BROKER, EXIT_BUG, EXIT_FAILED
from mrwbus.errors import BrokerUnavailable


def _replace_verb(monkeypatch: pytest.MonkeyPatch, name: str, verb: object) -> None:
    """Make `cli.main` run `verb` for the verb `name`, with the real parser otherwise."""
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    subparsers.choices[name].set_defaults(verb=verb)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (BrokerUnavailable("cannot reach RabbitMQ at amqp://guest:***@nowhere/"), EXIT_BROKER),
        (RuntimeError("oops"), EXIT_BUG),
    ],
)
def test_exit_code_by_kind_of_failure(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    exc: Exception,
    code: int,
) -> None:
    monkeypatch.delenv("MRWBUS_DEBUG", raising=False)

    def failing(args: argparse.Namespace) -> int:
        raise exc

    _replace_verb(monkeypatch, "status", failing)
    assert cli.main(["status"]) == code
    err = capsys.readouterr().err
    assert err.startswith("mrwbus: ") and err.count("\n") == 1


def test_an_invalid_configuration_is_1(tmp_path: Path) -> None:
    broken = tmp_path / "c.yaml"
    broken.write_text("servers: [\n")
    assert cli.main(["check-config", str(broken)]) == EXIT_FAILED


def test_a_one_shot_verb_silences_library_log_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a handler, Python would print aiormq's warning through logging.lastResort."""
    monkeypatch.delenv("MRWBUS_DEBUG", raising=False)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])

    def noisy(args: argparse.Namespace) -> int:
        logging.getLogger("aiormq.connection").warning("Connection attempt to ... failed")
        raise BrokerUnavailable("cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1/")

    _replace_verb(monkeypatch, "status", noisy)
    assert cli.main(["status"]) == EXIT_BROKER
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "mrwbus: cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:1/\n"
