"""Every verb documents itself: help text on every option, examples in every epilog, choices
where the values are a fixed set, and usage errors that are usage errors (exit 2)."""

from __future__ import annotations

import argparse

import pytest

from mrwbus import cli
from mrwbus.cli.common import EXIT_USAGE

PARSER = cli.build_parser()


def _verbs(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every verb by its words (`status`, `dead list`), the actions of a verb group included."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[prefix + name] = sub
                found.update(_verbs(sub, f"{prefix}{name} "))
    return found


VERBS = _verbs(PARSER)


def test_every_verb_is_listed_with_a_help_line() -> None:
    listed = next(a for a in PARSER._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in listed._choices_actions}
    assert set(helps) == {verb for verb in VERBS if " " not in verb}
    assert all(helps.values())


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_option_and_argument_has_help_text(verb: str) -> None:
    missing = [
        "/".join(action.option_strings) or action.dest
        for action in VERBS[verb]._actions
        if not action.help or action.help == argparse.SUPPRESS
    ]
    assert missing == [], f"mrwbus {verb}: no help text for {missing}"


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_verb_help_has_examples(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main([*verb.split(), "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "\nexamples:\n" in out
    assert f"mrwbus {verb}" in out.split("\nexamples:\n")[1]


def test_the_top_level_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for line in ("0   ok", "2   usage error", "3   RabbitMQ could not be reached", "NO_COLOR"):
        assert line in out


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--config", "c.yaml", "--log-level", "LOUD"],
        ["agent", "--server", "s1", "--config", "c.yaml", "--log-level", "chatty"],
        ["watch", "--kind", "faultz"],
        ["notify", "--server", "s1", "--category", "USB", "--device", "eth0"],
        ["run", "--config", "c.yaml", "--http", "nowhere"],
        ["simulate", "--config", "c.yaml", "--fault", "{not json"],
        ["simulate", "--config", "c.yaml", "--fault", "[1, 2]"],
        ["completion", "fish"],
        ["schema", "NoSuchMessage"],
        ["suspend"],
        ["dead"],
        ["dead", "list", "--since", "yesterday"],
        ["dead", "purge"],
    ],
)
def test_a_bad_value_is_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "usage: mrwbus" in err and "Traceback" not in err


def test_log_levels_are_case_insensitive() -> None:
    args = PARSER.parse_args(["run", "--config", "c.yaml", "--log-level", "debug"])
    assert args.log_level == "DEBUG"
