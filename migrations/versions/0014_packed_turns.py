"""Store growth per session (issue 9): a memory turn's text, terms and cited blobs become one
packed record, `memory_turns.body`.

The three compress together (the terms are the text's words, stemmed), so a recorded
session's two turns take about a third of a page instead of a whole one. Existing rows are
converted in pages on SQLite and PostgreSQL; SQLite drops the old columns in place, so turn
row ids (the keys of the contentless turn index) stay. Downgrade restores 0011's columns.
Like every migration this one imports only peek's core: the record's form is copied here as
`peek.memory.turnbody.pack_turn` has it at 0014, and the tests check the copy against it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

from peek.packed import pack_text, unpack_json

revision = "0014"
down_revision = "0011"
branch_labels = None
depends_on = None

PAGE = 1000
_OLD = ("text", "terms", "blobs")


def pack_turn(text: str, terms: str, blobs: dict[str, str]) -> bytes:
    """`memory_turns.body` (peek.memory.turnbody.pack_turn at 0014)."""
    return pack_text(json.dumps([text, terms, blobs], ensure_ascii=False, sort_keys=True,
                                separators=(",", ":")))


def upgrade() -> None:
    """Add `body`, fill it from the three columns, drop them."""
    op.add_column("memory_turns", sa.Column("body", sa.LargeBinary))
    _convert("text, terms, blobs", "body = :body",
             lambda r: {"body": pack_turn(r[1], r[2], json.loads(r[3]))})
    for column in _OLD:
        _drop(column)


def downgrade() -> None:
    """Back to 0011's text, terms and blobs (JSON text) columns."""
    for column in _OLD:
        op.add_column("memory_turns", sa.Column(column, sa.Text))
    _convert("body", "text = :text, terms = :terms, blobs = :blobs", _columns)
    _drop("body")


def _columns(row: tuple[Any, ...]) -> dict[str, str]:
    text, terms, blobs = unpack_json(row[1])
    return {"text": text, "terms": terms, "blobs": json.dumps(blobs, sort_keys=True)}


def _convert(source: str, sets: str, new: Callable[[tuple[Any, ...]], dict[str, Any]]) -> None:
    """Set columns of every turn from `source`, a page of ids at a time."""
    conn = op.get_bind()
    update = sa.text(f"UPDATE memory_turns SET {sets} WHERE id = :i")
    last = -1
    while rows := conn.execute(sa.text(f"SELECT id, {source} FROM memory_turns WHERE id > :last "
                                       f"ORDER BY id LIMIT {PAGE}"), {"last": last}).fetchall():
        conn.execute(update, [{**new(tuple(r)), "i": r[0]} for r in rows])
        last = rows[-1][0]


def _drop(column: str) -> None:
    """Drop a column in place (SQLite rebuilds nothing, rowids stay)."""
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"ALTER TABLE memory_turns DROP COLUMN {column}")
    else:
        op.drop_column("memory_turns", column)
