"""Store growth per session (issue 9): packed memory turns, and a lean verb index.

- A memory turn's text, terms and cited blobs become one packed record, `memory_turns.body`:
  the three compress together (the terms are the text's words, stemmed), so a recorded
  session's two turns take about a third of a page instead of a whole one.
- On SQLite the verb index (`memory_nodes_fts_<id>`, only ever matched by single terms, never
  ranked) keeps no documents, positions or sizes: each verb's document moves, packed, into its
  node row (`memory_nodes.doc`), by which the index deletes it. PostgreSQL's verb index is a
  `pg_lexical` table keyed by node id and stays as it is (`doc` unused there).

Existing rows are converted in pages on SQLite and PostgreSQL; SQLite drops the old columns in
place, so row ids (the keys of both full-text indexes) stay. Downgrade restores 0011's form.
Like every migration this one imports only peek's core: the record's form is copied here as
`peek.memory.turnbody.pack_turn` has it at 0014, and the tests check the copy against it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

from peek.packed import pack_text, unpack_json, unpack_text

revision = "0014"
down_revision = "0011"
branch_labels = None
depends_on = None

PAGE = 1000
_OLD = ("text", "terms", "blobs")
_VERB_INDEX = re.compile(r"memory_nodes_fts_\d+")
_TOKENIZE = "unicode61 remove_diacritics 0 tokenchars '_'"  # as peek.memory.fts has it
_LEAN = "content = '', detail = none, columnsize = 0, "  # peek.memory.fts.NODE_OPTIONS


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
        _drop("memory_turns", column)
    op.add_column("memory_nodes", sa.Column("doc", sa.LargeBinary))
    for table in _verb_indexes():
        docs = [(r[0], r[1]) for r in op.get_bind().exec_driver_sql(
            f"SELECT rowid, body FROM {table}")]
        _rebuild_verb_index(table, _LEAN, docs)
        op.get_bind().execute(sa.text("UPDATE memory_nodes SET doc = :d WHERE rowid = :r"),
                              [{"r": r, "d": pack_text(body)} for r, body in docs])


def downgrade() -> None:
    """Back to 0011's text, terms and blobs (JSON text) columns and stored verb documents."""
    for table in _verb_indexes():
        docs = op.get_bind().exec_driver_sql(
            "SELECT rowid, doc FROM memory_nodes WHERE corpus_id = ? AND doc IS NOT NULL",
            (int(table.rsplit("_", 1)[1]),)).fetchall()
        _rebuild_verb_index(table, "", [(r, unpack_text(d)) for r, d in docs])
    _drop("memory_nodes", "doc")
    for column in _OLD:
        op.add_column("memory_turns", sa.Column(column, sa.Text))
    _convert("body", "text = :text, terms = :terms, blobs = :blobs", _columns)
    _drop("memory_turns", "body")


def _verb_indexes() -> list[str]:
    """The verb indexes of a SQLite store (one per corpus)."""
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        return []
    rows = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table' "
                                "AND name LIKE 'memory_nodes_fts_%'").fetchall()
    return [r[0] for r in rows if _VERB_INDEX.fullmatch(r[0])]


def _rebuild_verb_index(table: str, options: str, docs: list[tuple[int, str]]) -> None:
    """Create a verb index anew with these options and (rowid, document)s."""
    conn = op.get_bind()
    conn.exec_driver_sql(f"DROP TABLE {table}")
    conn.exec_driver_sql(f'CREATE VIRTUAL TABLE {table} USING fts5(body, {options}tokenize = '
                         f'"{_TOKENIZE}")')
    if docs:
        conn.execute(sa.text(f"INSERT INTO {table}(rowid, body) VALUES (:r, :b)"),
                     [{"r": r, "b": b} for r, b in docs])


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


def _drop(table: str, column: str) -> None:
    """Drop a column in place (SQLite rebuilds nothing, rowids stay)."""
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
    else:
        op.drop_column(table, column)
