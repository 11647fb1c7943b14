"""The published JSON Schemas: generated from the models, committed up to date, and the examples
in docs/wire-contract.md valid against them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from mrwbus import cli
from mrwbus.operators.wire_schema import message_names, render, schema_of

DOCS = Path(__file__).parents[2] / "docs"
SCHEMA_DIR = DOCS / "schema"
EXAMPLE = re.compile(r"<!-- example: (\w+) -->\n```json\n(.*?)\n```", re.DOTALL)


def _examples() -> list[tuple[str, str]]:
    return EXAMPLE.findall((DOCS / "wire-contract.md").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", message_names())
def test_the_committed_schema_matches_the_models(name: str) -> None:
    committed = SCHEMA_DIR / f"{name}.json"
    assert committed.is_file() and committed.read_text(encoding="utf-8") == render(name), (
        f"docs/schema/{name}.json is stale: run `mrwbus schema --out docs/schema`"
    )


def test_no_schema_is_committed_for_a_message_that_is_gone() -> None:
    assert sorted(p.stem for p in SCHEMA_DIR.glob("*.json")) == sorted(message_names())


@pytest.mark.parametrize("name", message_names())
def test_each_schema_is_a_valid_json_schema(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(schema_of(name))


def test_the_wire_contract_has_an_example_of_every_message() -> None:
    assert sorted({name for name, _ in _examples()}) == sorted(message_names())


@pytest.mark.parametrize(("name", "body"), _examples(), ids=[name for name, _ in _examples()])
def test_every_example_in_the_wire_contract_is_valid(name: str, body: str) -> None:
    jsonschema.Draft202012Validator(schema_of(name)).validate(json.loads(body))


def test_the_schema_refuses_what_the_models_refuse() -> None:
    """The schema is not decoration: an unknown field or a wrong category fails it too."""
    fault = json.loads(dict(_examples())["FaultNotification"])
    validator = jsonschema.Draft202012Validator(schema_of("FaultNotification"))
    assert not validator.is_valid({**fault, "colour": "red"})
    assert not validator.is_valid({**fault, "category": "USB"})
    assert not validator.is_valid({k: v for k, v in fault.items() if k != "server"})


def test_schema_verb_prints_one_or_writes_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["schema", "FaultNotification"]) == 0
    assert capsys.readouterr().out == render("FaultNotification")
    assert cli.main(["schema", "--out", str(tmp_path)]) == 0
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == sorted(message_names())
