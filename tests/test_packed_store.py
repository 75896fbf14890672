"""Packed storage (issue 9, store growth): what a session and its memory keep, and migration 0009.

A store written before 0009 (JSON text sessions and memory nodes, raw window vectors) is
converted by the migration and reads back exactly as it was written; downgrading converts back.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from helpers import run_alembic
from sqlalchemy import text

from peek.agent.session import SessionStore
from peek.db import Database, open_database
from peek.errors import StoreError
from peek.memory import fts
from peek.memory.store import load_nodes, load_windows
from peek.packed import pack_json, pack_text, unpack_json, unpack_text
from peek.service import Peek

FILES = {
    "app/config.py": "import os\n\n\ndef load_config():\n    return os.environ.get('APP_MODE')\n",
    "app/server.py": "from app.config import load_config\n\n\ndef serve():\n    load_config()\n",
}


def test_a_packed_record_reads_back_exactly_and_small_ones_shrink() -> None:
    node = {"id": "v3", "phrase": "read", "source": "session:0123456789ab", "questions": [
        {"id": "v3q0", "text": "Who read it?", "answers": ["e0"]},
        {"id": "v3q1", "text": "What was read?", "answers": ["e4"]}]}
    raw = json.dumps(node, separators=(",", ":"))
    assert unpack_json(pack_json(node)) == node
    assert len(pack_text(raw)) < len(raw) / 2
    assert unpack_text(pack_text("grüße ✓")) == "grüße ✓"


def test_a_damaged_or_unknown_record_is_a_store_error_not_a_value() -> None:
    good = pack_text('{"question": "where is the config read?"}')
    with pytest.raises(StoreError, match="damaged"):
        unpack_text(good[:1] + bytes(b ^ 0xFF for b in good[1:]))
    with pytest.raises(StoreError, match="unknown format"):
        unpack_text(b"\x07" + good[1:])


QUESTIONS = ["where is the app mode read from the environment?", "what does serve call?"]


def _learned(root: Path, home: Path) -> tuple[str, dict[str, Any]]:
    """A store with asked and recorded sessions: the first session's id and what it reads back."""
    with Peek(root, home) as peek:
        peek.index()
        sessions = [peek.ask(q).session for q in QUESTIONS]
        for session in sessions:
            peek.record(session=session, edited=["app/config.py"], success=True)
        return sessions[0], _snapshot(peek, sessions[0])


def _snapshot(peek: Peek, session: str) -> dict[str, Any]:
    stored = SessionStore(peek.db, peek.corpus_id).load(session)
    with peek.db.read() as conn:
        nodes = load_nodes(conn, peek.corpus_id)
        windows = load_windows(conn, peek.corpus_id)
        cites = dict(conn.execute(text("SELECT id, cites FROM memory_nodes")).all())
        kinds = dict(conn.execute(text("SELECT id, entity_kind FROM memory_nodes")).all())
    return {"trajectory": json.loads(stored.trajectory), "result": json.loads(stored.result or ""),
            "nodes": [n.model_dump() for n in nodes], "windows": [w.vector for w in windows],
            "cites": {k: bool(v) for k, v in cites.items()}, "kinds": kinds,
            "search": [peek.memory_search(q, k=3).to_dict() for q in QUESTIONS]}


def _old_memory_indexes(db: Database) -> None:
    """The memory indexes as revision 0008's peek built them (documents stored in the index)."""
    with db.raw_write() as conn:
        cid = conn.execute("SELECT id FROM corpora").fetchone()[0]
        t, n = fts.turns_table(cid), fts.nodes_table(cid)
        for table in (t, n):
            conn.execute(f"CREATE VIRTUAL TABLE {table} USING fts5(body, "
                         f'tokenize = "{fts.TOKENIZE}")')
        conn.execute(f"CREATE VIRTUAL TABLE {t}_vi USING fts5vocab({t}, instance)")
        conn.execute(f"CREATE VIRTUAL TABLE {t}_vr USING fts5vocab({t}, row)")
        turns = [fts._Turn(*r) for r in conn.execute(
            "SELECT id, seq, session, terms FROM memory_turns ORDER BY seq")]
        conn.executemany(f"INSERT INTO {t}(rowid, body) VALUES (?, ?)",
                         [(u.row_id, fts.context_doc(turns, i)) for i, u in enumerate(turns)])
        verbs = conn.execute("SELECT rowid, data FROM memory_nodes WHERE kind = 'verb'").fetchall()
        conn.executemany(f"INSERT INTO {n}(rowid, body) VALUES (?, ?)",
                         fts.verb_docs(conn, cid, [(r, json.loads(d)) for r, d in verbs]))


def _round_trip(root: Path, home: Path, target: str | Path) -> None:
    """Downgrade a learned store to 0008, check its old format, migrate it, compare."""
    from alembic import command

    session, before = _learned(root, home)
    db = open_database(target)
    run_alembic(db, command.downgrade, "0008")
    with db.read() as conn:
        trajectory, result = conn.execute(text(
            "SELECT trajectory, result FROM agent_sessions WHERE id = :s"), {"s": session}).one()
        data = conn.execute(text("SELECT data FROM memory_nodes")).scalars().all()
        vectors = conn.execute(text("SELECT vector FROM memory_windows")).scalars().all()
    assert json.loads(trajectory) == before["trajectory"] and json.loads(result) == before["result"]
    assert all(isinstance(d, str) and json.loads(d) for d in data) and len(data) == len(
        before["nodes"])
    assert [bytes(v) for v in vectors] == before["windows"]
    if db.backend == "sqlite":
        _old_memory_indexes(db)  # the downgrade dropped them; 0009 converts what 0008 built
    db.close()
    open_database(target).close()  # opening migrates to the head revision
    with Peek(root, home) as peek:
        assert _snapshot(peek, session) == before
        with peek.db.read() as conn:
            stored = conn.execute(text("SELECT trajectory FROM agent_sessions WHERE id = :s"),
                                  {"s": session}).scalar_one()
            vector = conn.execute(text("SELECT vector FROM memory_windows")).scalars().first()
        assert unpack_json(stored) == before["trajectory"]  # packed, not JSON text
        assert zlib.decompress(bytes(vector)) == before["windows"][0]
        if peek.db.backend == "sqlite":
            with peek.db.query() as raw:
                sql = raw.execute("SELECT sql FROM sqlite_master WHERE name = ?",
                                  (fts.turns_table(peek.corpus_id),)).fetchone()[0]
            assert "content = ''" in sql
    assert any(before["cites"].values()) and "file" in before["kinds"].values()


def test_migration_0009_converts_an_existing_sqlite_store(make_corpus: Any, tmp_path: Path,
                                                          ) -> None:
    home = tmp_path / "home"
    _round_trip(make_corpus(FILES), home, home / "peek.db")


@pytest.mark.postgres
def test_migration_0009_converts_an_existing_postgres_store(
        make_corpus: Any, tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEEK_DATABASE_URL", pg_url)
    _round_trip(make_corpus(FILES), tmp_path / "home", pg_url)
