"""A memory turn's words as stored: its text, terms and cited blobs in one packed record.

The three compress together (the terms are the text's words, stemmed; the blobs are the
paths the text names), so a recorded session's two turns take about a third of a page
instead of a whole one (issue 9: store growth per recorded session).
"""

from __future__ import annotations

import json

from peek.errors import StoreError
from peek.packed import pack_text, unpack_json


def pack_turn(text: str, terms: str, blobs: dict[str, str]) -> bytes:
    """`memory_turns.body`: [text, terms, {path: blob sha}] as packed JSON (paths sorted)."""
    return pack_text(json.dumps([text, terms, blobs], ensure_ascii=False, sort_keys=True,
                                separators=(",", ":")))


def unpack_turn(body: bytes | memoryview) -> tuple[str, str, dict[str, str]]:
    """(text, terms, blobs) of a stored turn body; a malformed one is a StoreError."""
    value = unpack_json(body)
    if not (isinstance(value, list) and len(value) == 3 and isinstance(value[2], dict)):
        raise StoreError("a stored memory turn is malformed", "restore the store from a backup")
    return str(value[0]), str(value[1]), value[2]


def turn_terms(body: bytes | memoryview) -> str:
    """The stored terms of a turn body, space-separated."""
    return unpack_turn(body)[1]
