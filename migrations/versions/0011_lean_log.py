"""Store growth per session (issue 9): what a recorded session repeats is stored once.

- `memory_edges` becomes a WITHOUT ROWID table on SQLite (the table is its primary key, with
  no second copy in an autoindex) and its (node, open, verb) index a partial one over the few
  open edges; PostgreSQL gets the same partial index.
- `agent_sessions.ranking` moves to its own table, `agent_rankings` (a 2.2 KB session row
  took a 4 KB page; apart, both pack tight).
- `memory_nodes.norm` holds a 16-hex digest of the exact-match key, not the key (a file's or
  symbol's key is its whole path, stored a third time and indexed).
- `map_edits.before` and `.after` (the log's entries and changed fields) are packed JSON.
- `agent_sessions.result` drops the answer and citations its trajectory already holds.
- `map_sessions.trajectory`: rows written from now on are packed JSON, or a reference to the
  session's stored trajectory (`peek.contextmap.sessionlog`); existing zlib rows stay as they
  are (the reader takes both; checking that a stored trajectory is exactly the learned one
  needs the trajectory contract, which a migration does not import). Downgrade turns every
  row back into zlib JSON; a reference becomes the stored trajectory with its outcome (the
  same trajectory, its default fields left out).

Existing rows are converted in pages on SQLite and PostgreSQL; downgrade restores 0009's form.
Like every migration this one imports only peek's core: the rules it applies (a node's key, a
result's shared fields) are copied here as they are at 0011, and the tests check them against
the code's.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

from peek.packed import pack_text, unpack_json, unpack_text

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
    """Rebuild the edges, move the rankings, hash the node keys, pack the edit log, slim the
    results."""
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
        _swap("map_edits", column, sa.LargeBinary, pack_text)
    _rewrite("agent_sessions", "id", "trajectory, result", _slim_result)


def downgrade() -> None:
    """Back to 0009: a rowid edge table, whole results and zlib trajectories in the log."""
    for column in ("before", "after"):
        _swap("map_edits", column, sa.Text, unpack_text)
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


def _rewrite(table: str, key: str, columns: str,
             new: Callable[[tuple[Any, ...]], bytes | None]) -> None:
    """Set the last of `columns` of every row to `new(row)`."""
    conn = op.get_bind()
    column = columns.rsplit(", ", 1)[-1]
    update = sa.text(f"UPDATE {table} SET {column} = :v WHERE {key} = :k")
    for rows in _pages(table, key, columns):
        conn.execute(update, [{"k": r[0], "v": new(r)} for r in rows])


_SHARED = ("answer", "citations")  # as peek.agent.session._FROM_TRAJECTORY at 0011
_MARK = "$trajectory"


def _slim_result(row: tuple[Any, ...]) -> bytes | None:
    """A result without the fields its trajectory holds (peek.agent.session.pack_result)."""
    _, trajectory, result = row
    if result is None:
        return None
    traj, value = unpack_json(trajectory), unpack_json(result)
    return pack_text(json.dumps({k: {_MARK: k} if k in _SHARED and traj.get(k, _MARK) == v
                                 else v for k, v in value.items()}))


def _whole_result(row: tuple[Any, ...]) -> bytes | None:
    """A result with its shared fields put back (peek.agent.session.result_text)."""
    _, trajectory, result = row
    if result is None:
        return None
    value = unpack_json(result)
    marked = {k for k, v in value.items() if isinstance(v, dict) and v.keys() == {_MARK}}
    if not marked:
        return bytes(result)
    traj = unpack_json(trajectory)
    return pack_text(json.dumps({k: traj[value[k][_MARK]] if k in marked else v
                                 for k, v in value.items()}))


def _zlib_record(row: tuple[Any, ...]) -> bytes:
    """A session log record as 0009 wrote it: zlib JSON of the trajectory."""
    _, corpus_id, _, record = row
    data = bytes(record)
    if data[:1] == b"\x78":  # already zlib (written before 0011)
        return data
    value = unpack_json(data)
    if not (isinstance(value, dict) and set(value) == {"agent_session", "outcome"}):
        return zlib.compress(unpack_text(data).encode("utf-8"))
    stored = op.get_bind().execute(sa.text(
        "SELECT trajectory FROM agent_sessions WHERE id = :s AND corpus_id = :c"),
        {"s": value["agent_session"], "c": corpus_id}).scalar_one()
    traj = {**unpack_json(stored), "outcome": value["outcome"]}
    return zlib.compress(json.dumps(traj).encode("utf-8"))


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


_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def _key(kind: str, data: bytes) -> str:
    """A node's exact-match key from its packed JSON (peek.memory.store.node_key at 0011)."""
    node = unpack_json(data)
    if kind == "entity":
        entity_kind = node.get("kind", "thing")
        if entity_kind in ("file", "config", "symbol"):
            return f"{entity_kind}:{node['name']}"
        return _norm(node["name"])
    if kind == "verb":
        texts = sorted(f"{_head(q.get('text', ''))}={a}" for q in node.get("questions", [])
                       for a in q.get("answers", ["None"]) if a.startswith("TEXT:"))
        if not texts:
            return _norm(node["phrase"]) + ":"
        return _norm(node["phrase"]) + ":" + hashlib.sha1(
            "\n".join(texts).encode("utf-8")).hexdigest()[:16]
    return _norm(node["current_name"])


def _norm(name: str) -> str:
    return _NON_ALNUM.sub("", name.lower())


def _head(question: str) -> str:
    return question.split(maxsplit=1)[0].lower() if question.strip() else ""


def _digest(kind: str, data: bytes) -> str:
    """What `norm` holds from 0011 on (peek.memory.store.key_digest)."""
    return hashlib.blake2b(_key(kind, data).encode("utf-8"), digest_size=8).hexdigest()


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
