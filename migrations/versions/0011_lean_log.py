"""Store growth per session (issue 9): what a recorded session repeats is stored once.

- `memory_edges` becomes a WITHOUT ROWID table on SQLite (the table is its primary key, with
  no second copy in an autoindex) and its (node, open, verb) index a partial one over the few
  open edges; PostgreSQL gets the same partial index.
- `agent_sessions.ranking` moves to its own table, `agent_rankings` (a 2.2 KB session row
  took a 4 KB page; apart, both pack tight).
- `memory_nodes.norm` holds a 16-hex digest of the exact-match key, not the key (a file's or
  symbol's key is its whole path, stored a third time and indexed).
- `map_edits.before` and `.after` (the log's entries and changed fields) are packed JSON.
- `agent_sessions.result` drops the answer and citations its trajectory already holds
  (`peek.agent.session.pack_result`).
- `map_sessions.trajectory` becomes packed JSON and, where the session's stored trajectory with
  the learned outcome is exactly what was learned from, a reference to it
  (`peek.contextmap.sessionlog`).

Existing rows are converted in pages on SQLite and PostgreSQL; downgrade restores 0009's form.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None

PAGE = 1000
_EDGE_COLUMNS = ("corpus_id INTEGER NOT NULL, verb_id VARCHAR(32) NOT NULL, "
                 "node_id VARCHAR(32) NOT NULL, open BOOLEAN NOT NULL, seq INTEGER NOT NULL, "
                 "PRIMARY KEY (corpus_id, verb_id, node_id), "
                 "FOREIGN KEY(corpus_id) REFERENCES corpora (id) ON DELETE CASCADE")


def upgrade() -> None:
    """Rebuild the edges, move the rankings, slim the results, reference the trajectories."""
    _edges(rowid=False)
    op.create_table(
        "agent_rankings",
        sa.Column("session_id", sa.String(32),
                  sa.ForeignKey("agent_sessions.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("ranking", sa.LargeBinary, nullable=False))
    op.execute("INSERT INTO agent_rankings (session_id, ranking) SELECT id, ranking "
               "FROM agent_sessions WHERE ranking IS NOT NULL ORDER BY created_at, id")
    _drop_ranking()
    _norms(_digest)
    for column in ("before", "after"):
        _swap("map_edits", column, sa.LargeBinary, _pack)
    _rewrite("agent_sessions", "id", "trajectory, result", _slim_result)
    _rewrite("map_sessions", "id", "corpus_id, session, trajectory", _log_record)


def downgrade() -> None:
    """Back to 0009: a rowid edge table, whole results and zlib trajectories in the log."""
    for column in ("before", "after"):
        _swap("map_edits", column, sa.Text, _unpack)
    _norms(_key)
    _rewrite("map_sessions", "id", "corpus_id, session, trajectory", _zlib_record)
    _rewrite("agent_sessions", "id", "trajectory, result", _whole_result)
    op.add_column("agent_sessions", sa.Column("ranking", sa.LargeBinary))
    op.execute("UPDATE agent_sessions SET ranking = (SELECT r.ranking FROM agent_rankings r "
               "WHERE r.session_id = agent_sessions.id)")
    op.drop_table("agent_rankings")
    _edges(rowid=True)


def _drop_ranking() -> None:
    """Drop agent_sessions.ranking in place (SQLite rebuilds nothing, rowids stay)."""
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("ALTER TABLE agent_sessions DROP COLUMN ranking")
    else:
        op.drop_column("agent_sessions", "ranking")


def _edges(rowid: bool) -> None:
    """The edge table and its node indexes as 0011 (or, with `rowid`, 0009) has them."""
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"CREATE TABLE memory_edges_new ({_EDGE_COLUMNS})"
                             + ("" if rowid else " WITHOUT ROWID"))
        conn.exec_driver_sql("INSERT INTO memory_edges_new (corpus_id, verb_id, node_id, open, "
                             "seq) SELECT corpus_id, verb_id, node_id, open, seq FROM memory_edges")
        conn.exec_driver_sql("DROP TABLE memory_edges")
        conn.exec_driver_sql("ALTER TABLE memory_edges_new RENAME TO memory_edges")
        op.create_index("ix_memory_edges_node_seq", "memory_edges",
                        ["corpus_id", "node_id", "seq", "verb_id"])
    elif rowid:
        op.drop_index("ix_memory_edges_open", "memory_edges")
    else:
        op.drop_index("ix_memory_edges_node", "memory_edges")
    if rowid:
        op.create_index("ix_memory_edges_node", "memory_edges",
                        ["corpus_id", "node_id", "open", "verb_id"])
    else:
        only = sa.text("open = TRUE")  # covering; SQLite uses it for `open = TRUE` exactly
        op.create_index("ix_memory_edges_open", "memory_edges",
                        ["corpus_id", "node_id", "open", "verb_id"], sqlite_where=only,
                        postgresql_where=only)


def _pages(table: str, key: str, columns: str) -> Iterator[list[Any]]:
    """Every row of a table (its key first), a page at a time, in key order."""
    conn = op.get_bind()
    last: Any = None
    while True:
        after = "" if last is None else f"WHERE {key} > :last "
        rows = conn.execute(sa.text(f"SELECT {key}, {columns} FROM {table} {after}"
                                    f"ORDER BY {key} LIMIT {PAGE}"), {"last": last}).fetchall()
        if not rows:
            return
        yield [tuple(r) for r in rows]
        last = rows[-1][0]


def _rewrite(table: str, key: str, columns: str, new: Callable[[Any, tuple[Any, ...]],
                                                               bytes | None]) -> None:
    """Set the last of `columns` of every row to `new(driver connection, row)`."""
    from peek.db import driver

    conn = op.get_bind()
    column = columns.rsplit(", ", 1)[-1]
    update = sa.text(f"UPDATE {table} SET {column} = :v WHERE {key} = :k")
    for rows in _pages(table, key, columns):
        values = [{"k": r[0], "v": new(driver(conn), r)} for r in rows]
        conn.execute(update, values)


def _slim_result(_: Any, row: tuple[Any, ...]) -> bytes | None:
    from peek.agent.session import pack_result
    from peek.packed import unpack_json

    _, trajectory, result = row
    if result is None:
        return None
    return pack_result(unpack_json(result), unpack_json(trajectory))


def _whole_result(_: Any, row: tuple[Any, ...]) -> bytes | None:
    from peek.agent.session import result_text
    from peek.packed import pack_text, unpack_text

    _, trajectory, result = row
    return None if result is None else pack_text(result_text(result, unpack_text(trajectory)))


def _log_record(conn: Any, row: tuple[Any, ...]) -> bytes:
    """A logged trajectory as 0011 stores it; one that does not read back byte for byte as
    the trajectory contract (written by an older peek) is kept in full, as it was."""
    from peek.contextmap.errors import TrajectoryError
    from peek.contextmap.sessionlog import log_record
    from peek.contextmap.trajectory import parse_trajectory
    from peek.packed import pack_text

    _, corpus_id, session, record = row
    text = zlib.decompress(bytes(record)).decode("utf-8")
    try:
        traj = parse_trajectory(json.loads(text))
    except TrajectoryError:
        return pack_text(text)
    if traj.model_dump_json() != text:
        return pack_text(text)
    return log_record(conn, corpus_id, session, traj)


def _zlib_record(conn: Any, row: tuple[Any, ...]) -> bytes:
    from peek.contextmap.sessionlog import logged_trajectory

    _, corpus_id, _, record = row
    return zlib.compress(logged_trajectory(conn, corpus_id, record).encode("utf-8"))


def _norms(new: Callable[[str, bytes], str]) -> None:
    """Set every memory node's `norm` from its kind and packed JSON, a page at a time."""
    conn = op.get_bind()
    update = sa.text("UPDATE memory_nodes SET norm = :n WHERE corpus_id = :c AND id = :i")
    offset = 0
    while rows := conn.execute(sa.text(
            f"SELECT corpus_id, id, kind, data FROM memory_nodes ORDER BY corpus_id, id "
            f"LIMIT {PAGE} OFFSET {offset}")).fetchall():
        conn.execute(update, [{"n": new(r[2], bytes(r[3])), "c": r[0], "i": r[1]} for r in rows])
        offset += len(rows)


def _key(kind: str, data: bytes) -> str:
    from peek.memory.store import node_from_json, node_key

    return node_key(node_from_json(kind, data))


def _digest(kind: str, data: bytes) -> str:
    from peek.memory.store import key_digest

    return key_digest(_key(kind, data))



def _swap(table: str, column: str, kind: Any, new: Callable[[Any], Any]) -> None:
    """Convert a nullable column into a new one of `kind`, which then takes its name (SQLite
    alters in place, so rowids stay), a page of ids at a time."""
    conn = op.get_bind()
    op.add_column(table, sa.Column(f"{column}_new", kind))
    update = sa.text(f'UPDATE {table} SET "{column}_new" = :v WHERE id = :i')
    last = -1
    while rows := conn.execute(sa.text(
            f'SELECT id, "{column}" FROM {table} WHERE id > :last AND "{column}" IS NOT NULL '
            f"ORDER BY id LIMIT {PAGE}"), {"last": last}).fetchall():
        conn.execute(update, [{"v": new(r[1]), "i": r[0]} for r in rows])
        last = rows[-1][0]
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f'ALTER TABLE {table} DROP COLUMN "{column}"')
        conn.exec_driver_sql(f'ALTER TABLE {table} RENAME COLUMN "{column}_new" TO "{column}"')
    else:
        op.drop_column(table, column)
        op.alter_column(table, f"{column}_new", new_column_name=column, existing_type=kind)


def _pack(value: str) -> bytes:
    from peek.packed import pack_text

    return pack_text(value)


def _unpack(value: bytes) -> str:
    from peek.packed import unpack_text

    return unpack_text(value)
