"""Text for a terminal: what came off the bus is shown, never obeyed.

A device name, a driver's message or an operator's name travel in messages anyone with broker
credentials may write; printed raw, an escape sequence in them would recolour, move or rewrite
what an operator reads. Control and format characters are therefore shown as escapes (`\\x1b`).
"""

from __future__ import annotations

import unicodedata


def printable(text: str) -> str:
    """`text` with every control or format character (Unicode category C*) escaped."""
    if text.isprintable():
        return text
    return "".join(
        char if unicodedata.category(char)[0] != "C" or char == " " else _escape(char)
        for char in text
    )


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
