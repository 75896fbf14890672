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


def unpack_turn(body: bytes | memoryview | None, turn: str | None = None,
                ) -> tuple[str, str, dict[str, str]]:
    """(text, terms, blobs) of a stored turn body (`turn`: its id, for the message); a
    malformed one is a StoreError naming the turn, never a wrong value."""
    if body is None:
        raise _damaged(turn, "its body is missing")
    try:
        value = unpack_json(body)
    except StoreError as exc:
        raise _damaged(turn, exc.message) from exc
    if not (isinstance(value, list) and len(value) == 3 and isinstance(value[2], dict)):
        raise _damaged(turn, "not [text, terms, blobs]")
    return str(value[0]), str(value[1]), value[2]


def _damaged(turn: str | None, why: str) -> StoreError:
    which = f"memory turn {turn!r}" if turn is not None else "a stored memory turn"
    return StoreError(f"{which} cannot be read: {why}", "restore the store from a backup")


def turn_terms(body: bytes | memoryview | None, turn: str | None = None) -> str:
    """The stored terms of a turn body, space-separated."""
    return unpack_turn(body, turn)[1]
