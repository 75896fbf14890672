"""Packed storage (issue 9, store growth): session trajectories and results, and memory nodes,
as packed JSON (`peek.packed`); memory nodes keep in columns what SQL read from their JSON (an
entity's kind, whether the node cites code); window vectors deflated; on SQLite the memory turn
indexes become contentless (their documents are rebuilt from the turns, not stored twice).

Existing rows are converted here, in pages, on SQLite and PostgreSQL alike; downgrade converts
them back to the JSON text and raw vectors of revision 0008.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

from peek.packed import pack_text, unpack_text

revision = "0009"
down_revision = "0013"
branch_labels = None
depends_on = None

PAGE = 1000
_TURN_INDEX = re.compile(r"memory_fts_\d+")
_TOKENIZE = "unicode61 remove_diacritics 0 tokenchars '_'"  # as peek.memory.fts has it
# table -> (primary key columns, JSON columns that become packed BLOBs and whether each is required)
_PACKED = {
    "agent_sessions": (("id",), (("trajectory", False), ("result", True))),
    "memory_nodes": (("corpus_id", "id"), (("data", False),)),
}


def upgrade() -> None:
    """Add packed columns, fill them from the JSON ones, then let them take the old names."""
    for table, (keys, columns) in _PACKED.items():
        for column, _ in columns:
            op.add_column(table, sa.Column(f"{column}_packed", sa.LargeBinary))
        if table == "memory_nodes":
            op.add_column(table, sa.Column("cites", sa.Boolean, nullable=False,
                                           server_default=sa.false()))
            op.add_column(table, sa.Column("entity_kind", sa.String(16)))
        for column, _ in columns:
            _convert(table, keys, column, {f"{column}_packed":
                                           lambda v: None if v is None else pack_text(v)})
        if table == "memory_nodes":
            _convert(table, keys, "data", {"cites": lambda v: _cites(json.loads(v)),
                                           "entity_kind": _entity_kind})
        _swap(table, columns, sa.LargeBinary)
    _convert("memory_windows", ("corpus_id", "idx"), "vector",
             {"vector": lambda v: None if v is None else zlib.compress(bytes(v), 6)})
    _contentless_turn_indexes()


def downgrade() -> None:
    """Back to JSON text columns and raw window vectors; the memory indexes are dropped, and the
    previous peek rebuilds them on first use."""
    _drop_memory_indexes()
    _convert("memory_windows", ("corpus_id", "idx"), "vector",
             {"vector": lambda v: None if v is None else zlib.decompress(bytes(v))})
    for table, (keys, columns) in _PACKED.items():
        for column, _ in columns:
            op.add_column(table, sa.Column(f"{column}_packed", sa.Text))
        if table == "memory_nodes":
            _drop(table, "cites")
            _drop(table, "entity_kind")
        for column, _ in columns:
            _convert(table, keys, column, {f"{column}_packed":
                                           lambda v: None if v is None else unpack_text(v)})
        _swap(table, columns, sa.Text)


def _turn_indexes(conn: Any) -> list[str]:
    """The memory turn indexes of a SQLite store (one per corpus)."""
    if conn.dialect.name != "sqlite":
        return []
    rows = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table' "
                                "AND name LIKE 'memory_fts_%'").fetchall()
    return [r[0] for r in rows if _TURN_INDEX.fullmatch(r[0])]


def _contentless_turn_indexes() -> None:
    """Rebuild each turn index without stored content, from its own documents."""
    conn = op.get_bind()
    for table in _turn_indexes(conn):
        docs = conn.exec_driver_sql(f"SELECT rowid, body FROM {table}").fetchall()
        for name in (f"{table}_vi", f"{table}_vr", table):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        conn.exec_driver_sql(f"CREATE VIRTUAL TABLE {table} USING fts5(body, content = '', "
                             f'tokenize = "{_TOKENIZE}")')
        conn.exec_driver_sql(f"CREATE VIRTUAL TABLE {table}_vi USING fts5vocab({table}, instance)")
        conn.exec_driver_sql(f"CREATE VIRTUAL TABLE {table}_vr USING fts5vocab({table}, row)")
        if docs:
            conn.execute(sa.text(f"INSERT INTO {table}(rowid, body) VALUES (:r, :b)"),
                         [{"r": r, "b": b} for r, b in docs])


def _drop_memory_indexes() -> None:
    """Drop the SQLite memory indexes (turns and verbs) of every corpus."""
    conn = op.get_bind()
    for table in _turn_indexes(conn):
        nodes = table.replace("memory_fts_", "memory_nodes_fts_")
        for name in (f"{table}_vi", f"{table}_vr", table, nodes):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")


def _cites(node: dict[str, Any]) -> bool:
    """Whether a node's JSON names a file's blob (its roles' or, for a verb, its own)."""
    roles = node.get("roles") or []
    return bool(node.get("blobs")) or any(r.get("blobs") for r in roles if isinstance(r, dict))


def _entity_kind(data: str) -> str | None:
    """An entity's kind as its JSON says (none: 'thing'); None for other nodes (only an
    entity's JSON has a `name`: verbs have a `phrase`, places and times a `current_name`)."""
    node = json.loads(data)
    return str(node.get("kind", "thing")) if "name" in node else None


def _swap(table: str, columns: tuple[tuple[str, bool], ...], new: Any) -> None:
    """Drop the old columns and give the converted ones their names. SQLite alters the table in
    place (a rebuilt table would renumber the rowids the memory verb index is keyed by)."""
    conn = op.get_bind()
    for column, nullable in columns:
        _drop(table, column)
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(f"ALTER TABLE {table} RENAME COLUMN {column}_packed TO {column}")
        else:
            op.alter_column(table, f"{column}_packed", new_column_name=column, existing_type=new,
                            nullable=nullable)


def _drop(table: str, column: str) -> None:
    """Drop a column in place, on either backend."""
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
    else:
        op.drop_column(table, column)


def _convert(table: str, keys: tuple[str, ...], source: str,
             targets: dict[str, Callable[[Any], Any]]) -> None:
    """Set each target column from `source` for every row, a page of primary keys at a time."""
    conn = op.get_bind()
    order = ", ".join(keys)
    match = " AND ".join(f"{k} = :k{i}" for i, k in enumerate(keys))
    sets = ", ".join(f"{t} = :t_{t}" for t in targets)
    update = sa.text(f"UPDATE {table} SET {sets} WHERE {match}")
    offset = 0
    while True:
        rows = conn.execute(sa.text(f"SELECT {order}, {source} FROM {table} ORDER BY {order} "
                                    f"LIMIT {PAGE} OFFSET {offset}")).fetchall()
        if not rows:
            return
        conn.execute(update, [{**{f"t_{t}": f(r[-1]) for t, f in targets.items()},
                               **{f"k{i}": r[i] for i in range(len(keys))}} for r in rows])
        offset += len(rows)
