"""Moving a store between backends (`peek migrate-store`): SQLite to PostgreSQL and back.

Every row of every table the migrations made is copied, ids included, into an empty store at
the same schema revision; the full-text indexes are not copied (their formats differ by
backend) but rebuilt in the target from the copied rows, with the same tokens, so search and
memory answer as before. PostgreSQL's id sequences are moved past the copied ids. Sessions
still in flight (LangGraph's checkpoints for `peek ask --resume`) are not moved.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from peek.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from peek.db import Database

BATCH = 2000
#: full-text tables (and SQLite's FTS5 shadow and vocabulary tables): rebuilt, never copied
_FTS = re.compile(r"^(chunks_fts|memory_fts|memory_nodes_fts|outcomes_fts|outcome_files_fts)_|"
                  r"^fts_stats$")
#: LangGraph's checkpoint tables (PostgreSQL stores only): sessions in flight, not moved, as
#: SQLite's checkpoint file is not
_CHECKPOINTS = re.compile(r"^checkpoint(s|_blobs|_writes|_migrations)$")


def copy_store(source: Database, target: Database,
               progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Copy every row into the empty `target`, then rebuild its indexes; rows per table."""
    from sqlalchemy import MetaData, inspect

    names = [t for t in inspect(source.engine).get_table_names()
             if t != "alembic_version" and not _FTS.match(t) and not _CHECKPOINTS.match(t)]
    meta = MetaData()
    meta.reflect(target.engine, only=names)
    counts: dict[str, int] = {}
    with source.read() as src, target.write() as dst:
        _check_empty(dst, target)
        for table in meta.sorted_tables:
            counts[table.name] = _copy_table(src, dst, table)
            if progress is not None:
                progress(table.name, counts[table.name])
        if target.backend == "postgresql":
            _advance_sequences(dst, meta)
        rebuild_indexes(dst)
    return counts


def _check_empty(conn: Connection, target: Database) -> None:
    from sqlalchemy import text

    if conn.execute(text("SELECT COUNT(*) FROM corpora")).scalar():
        raise StoreError(f"{target.location} already holds corpora",
                         "migrate into an empty store (a new database or file)")


def _copy_table(src: Connection, dst: Connection, table: Any) -> int:
    from sqlalchemy import text

    columns = [c.name for c in table.columns]
    quoted = ", ".join(f'"{c}"' for c in columns)
    rows = src.execute(text(f'SELECT {quoted} FROM "{table.name}"'))
    total = 0
    while batch := rows.fetchmany(BATCH):
        dst.execute(table.insert(), [_row(table, columns, r) for r in batch])
        total += len(batch)
    return total


def _row(table: Any, columns: list[str], row: Any) -> dict[str, Any]:
    """A source row as the target's column types take it (SQLite keeps booleans as 0/1)."""
    from sqlalchemy import Boolean

    out = {}
    for name, value in zip(columns, row, strict=True):
        if value is not None and isinstance(table.c[name].type, Boolean):
            value = bool(value)
        out[name] = value
    return out


def _advance_sequences(conn: Connection, meta: Any) -> None:
    """Move each serial id's sequence past the copied ids (explicit ids do not advance it)."""
    from sqlalchemy import text

    for table in meta.sorted_tables:
        if "id" not in table.c:
            continue
        seq = conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"),
                           {"t": table.name}).scalar()
        if seq:
            conn.execute(text(f'SELECT setval(:s, COALESCE((SELECT MAX(id) FROM "{table.name}"),'
                              " 0) + 1, false)"), {"s": seq})


def rebuild_indexes(conn: Connection, memory: bool = True) -> None:
    """The code, outcome and (with `memory`) memory full-text indexes of every corpus, from the
    stored rows."""
    from sqlalchemy import text

    for (corpus_id,) in conn.execute(text("SELECT id FROM corpora ORDER BY id")).fetchall():
        _rebuild_code(conn, corpus_id)
        _rebuild_outcomes(conn, corpus_id)
        if memory:
            _rebuild_memory(conn, corpus_id)


def restem_postgres(conn: Connection) -> None:
    """Rebuild every PostgreSQL full-text table (each has an `fts_stats` row) from the stored
    rows, after the text analysis changed how peek stems its lexemes (migration 0013);
    memory's are dropped, and its first use rebuilds them."""
    from peek.db import driver
    from peek.retrieval import pg_lexical

    raw = driver(conn)
    if not pg_lexical.exists(raw, "fts_stats"):
        return
    for (name,) in raw.execute("SELECT name FROM fts_stats ORDER BY name").fetchall():
        pg_lexical.drop_table(raw, name)
    # memory's are left to its first use, which re-derives its terms (0013 marks them as made
    # by the old analysis) and so rebuilds them; its turns are read with the code's schema
    rebuild_indexes(conn, memory=False)


def _rebuild_code(conn: Connection, corpus_id: int) -> None:
    from peek.db import driver
    from peek.retrieval.indexer import symbol_field
    from peek.retrieval.lexical import ensure_fts, insert_fts_rows
    from peek.text import expand_for_index, path_field

    ensure_fts(conn, corpus_id)
    rows = driver(conn).execute(
        "SELECT c.id, f.path, c.symbol, c.text FROM chunks c JOIN files f ON f.id = c.file_id "
        "WHERE f.corpus_id = ? ORDER BY c.id", (corpus_id,)).fetchall()
    for start in range(0, len(rows), BATCH):
        insert_fts_rows(conn, corpus_id, [
            {"rowid": r[0], "path": path_field(r[1]), "symbol": symbol_field(r[2]),
             "body": expand_for_index(r[3])} for r in rows[start:start + BATCH]])


def _rebuild_outcomes(conn: Connection, corpus_id: int) -> None:
    import json

    from sqlalchemy import text

    from peek.agent.localize import index_outcome
    from peek.memory.outcomes import ensure_fts, fts_name, outcome_document
    from peek.retrieval.lexical import fts_add

    summaries = _has_summaries(conn)
    rows = conn.execute(text(f"SELECT id, question, edited, {'summary' if summaries else 'NULL'} "
                             "FROM session_outcomes WHERE corpus_id = :c ORDER BY id"),
                        {"c": corpus_id}).fetchall()
    if not rows:
        return
    ensure_fts(conn, corpus_id)
    fts_add(conn, fts_name(corpus_id), [(r[0], None, outcome_document(r[1], r[3])) for r in rows],
            column="question")
    index_outcome(conn, corpus_id, {p for r in rows for p in json.loads(r[2])}, summaries)


def _has_summaries(conn: Connection) -> bool:
    """Whether outcomes have a summary column: not while a migration before 0015 (or 0015's
    downgrade) rebuilds the indexes."""
    from sqlalchemy import inspect

    return "summary" in {c["name"] for c in inspect(conn).get_columns("session_outcomes")}


def rebuild_outcome_indexes(conn: Connection, corpus_ids: list[int]) -> None:
    """Drop and rebuild these corpora's outcome indexes from the stored rows (migration 0015's
    downgrade: documents made with summaries become the questions alone again)."""
    from peek.agent.localize import profile_table
    from peek.memory.outcomes import fts_name
    from peek.retrieval.lexical import drop_fts

    for corpus_id in corpus_ids:
        for table in (fts_name(corpus_id), profile_table(corpus_id)):
            drop_fts(conn, table)
        _rebuild_outcomes(conn, corpus_id)


def _rebuild_memory(conn: Connection, corpus_id: int) -> None:
    from sqlalchemy import text

    from peek.db import driver
    from peek.memory import fts

    if conn.execute(text("SELECT 1 FROM memory_state WHERE corpus_id = :c"),
                    {"c": corpus_id}).first() is not None:
        fts.ensure_indexed(driver(conn), corpus_id)
