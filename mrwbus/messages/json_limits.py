"""Limits on a JSON text checked before the parser runs (`messages.json_object`, under
`messages.parse_message`): nesting and number length, which would otherwise make the parser
recurse out of the stack or spend its time converting digits."""

from __future__ import annotations

import re

from mrwbus.errors import ContractError

MAX_DEPTH = 32
"""Nesting of arrays and objects: the deepest message (a status reply) is 5 deep."""

MAX_NUMBER_CHARS = 64
"""Characters of one JSON number: no field of the contract needs more than a few dozen."""

_LONG_NUMBER = re.compile(rf"[-+0-9.eE]{{{MAX_NUMBER_CHARS + 1},}}")
_BRACKET = re.compile(r"[\[\]{}]")


def scan(text: str) -> None:
    """Refuse what would make the JSON parser slow or crash, before it runs: nesting deeper
    than `MAX_DEPTH`, a number longer than `MAX_NUMBER_CHARS`. Linear, in C-speed string
    operations (no backtracking regex over strings, which a body of quotes and backslashes
    could make quadratic): escape pairs are dropped, so every `"` left delimits a string, and
    only what lies outside the strings is looked at."""
    unescaped = text.replace("\\\\", "").replace('\\"', "")
    outside = "".join(unescaped.split('"')[0::2])
    if (number := _LONG_NUMBER.search(outside)) is not None:
        raise ContractError(
            f"body holds a number of {len(number.group())} characters, "
            f"at most {MAX_NUMBER_CHARS} allowed"
        )
    if outside.count("[") + outside.count("{") <= MAX_DEPTH:
        return
    depth = 0
    for bracket in _BRACKET.finditer(outside):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > MAX_DEPTH:
            raise ContractError(f"body is nested more than {MAX_DEPTH} deep")
