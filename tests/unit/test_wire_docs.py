"""The wire contract document is generated from the models; it must never drift from them."""

from pathlib import Path

from mrwbus.operators.wire_docs import (
    EVENTS_BEGIN,
    EVENTS_END,
    generated_section,
    render_event_codes,
    render_tables,
)

DOC = Path(__file__).parents[2] / "docs" / "wire-contract.md"
OPERATIONS = Path(__file__).parents[2] / "docs" / "operations.md"


def test_wire_contract_document_matches_the_models() -> None:
    assert generated_section(DOC.read_text(encoding="utf-8")) == render_tables(), (
        "docs/wire-contract.md is stale: paste the output of `python -m mrwbus.operators.wire_docs`"
    )


def test_operations_document_lists_every_event_code() -> None:
    doc = OPERATIONS.read_text(encoding="utf-8")
    assert generated_section(doc, EVENTS_BEGIN, EVENTS_END) == render_event_codes(), (
        "docs/operations.md is stale: paste the output of `python -m mrwbus.operators.wire_docs events`"
    )


def test_every_category_key_is_documented() -> None:
    from mrwbus.messages import Category

    text = DOC.read_text(encoding="utf-8")
    for category in Category:
        assert f"| `{category.value}` | `{category.routing_key}` |" in text
