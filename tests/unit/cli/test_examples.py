"""Every example in every `--help` and in the docs is run (issue 27, item 7): the offline verbs
(check-config, simulate, schema, completion) for real, with their output compared where the
docs show it; the verbs that need a broker are parsed (their options must exist)."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from mrwbus import cli

ROOT = Path(__file__).parents[3]
CONFIG = str(ROOT / "config" / "cluster.yaml")
OFFLINE = ("check-config", "simulate", "schema", "completion")
PARSER = cli.build_parser()


def _help_examples() -> list[str]:
    found = []
    for action in PARSER._actions:
        if isinstance(action, argparse._SubParsersAction):
            subs = list(action.choices.values())
            for sub in subs:
                for inner in sub._actions:
                    if isinstance(inner, argparse._SubParsersAction):
                        subs.extend(inner.choices.values())
                epilog = sub.epilog or ""
                if "examples:" not in epilog:
                    continue
                joined = epilog.split("examples:")[-1].replace("\\\n", " ")
                for line in joined.splitlines():
                    command = line.split("  #")[0].strip()
                    match = re.search(r"mrwbus [^)|>]*", command)
                    if match:
                        found.append(" ".join(match.group(0).split()))
    return sorted(set(found))


def _argv(command: str, tmp_path: Path) -> list[str]:
    words = shlex.split(command)[1:]
    paths = {"cluster.yaml", "/etc/mrwbus/cluster.yaml", "config/cluster.yaml"}
    words = [CONFIG if word in paths else word for word in words]
    return [str(tmp_path / "schema") if word == "docs/schema" else word for word in words]


@pytest.mark.parametrize("command", _help_examples())
def test_every_help_example_runs(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _argv(command, tmp_path)
    if argv[0] not in OFFLINE:
        PARSER.parse_args(argv)  # needs a broker: its options must parse
        return
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert capsys.readouterr().out


def _doc_commands() -> list[tuple[str, str, list[str]]]:
    """(file, command line, the output shown after it) for every offline verb in the docs."""
    found = []
    for doc in [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]:
        lines = doc.read_text().splitlines()
        for index, line in enumerate(lines):
            text = line.removeprefix("$ ")
            if not re.match(rf"mrwbus ({'|'.join(OFFLINE)})\b", text):
                continue
            command, at = text, index
            while command.endswith("\\"):
                at += 1
                command = command[:-1] + lines[at].strip()
            output = []
            if line.startswith("$ "):
                for after in lines[at + 1 :]:
                    if after.startswith(("$ ", "```")) or not after:
                        break
                    output.append(after)
            found.append((doc.name, command.split("  #")[0].strip(), output))
    return found


@pytest.mark.parametrize(
    ("doc", "command", "output"), _doc_commands(), ids=lambda value: str(value)[:60]
)
def test_every_doc_example_runs_as_shown(
    doc: str, command: str, output: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if "pg.yaml" in command:
        (tmp_path / "pg.yaml").write_text(_pg_yaml())
        command = command.replace("pg.yaml", str(tmp_path / "pg.yaml"))
    if "'...'" in command:  # the walk-through's third fault: the first fault's
        command = command.replace("'...'", shlex.quote(_first_pg_fault()))
    assert cli.main(_argv(command, tmp_path)) == 0, capsys.readouterr().err
    shown = capsys.readouterr().out.splitlines()
    expected = [line for line in output if line.strip() != "..."]
    if any(line.strip() == "..." for line in output):
        assert all(line in shown for line in expected), shown
    elif output:
        assert shown == output


def _pg_yaml() -> str:
    text = (ROOT / "docs" / "configuration.md").read_text()
    walk = text.split("## A walk-through")[1]
    return walk.split("```yaml\n")[1].split("```")[0]


def _first_pg_fault() -> str:
    text = (ROOT / "docs" / "configuration.md").read_text()
    return re.findall(r"--fault '(\{[^']*\})'", text)[0]
