"""Packed memory turns and the lean verb index (issue 9, store growth), and migration 0014.

A memory turn's text, terms and cited blobs are one packed record; on SQLite the verb index
keeps no documents (each verb's is packed in its node row). A store written at revision 0011
is converted by the migration and reads back exactly as it was written; downgrading converts
back. Growing memory keeps the contentless verb index exactly the index its documents make.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import run_alembic
from sqlalchemy import text
from test_lean_store import FILES, QUESTIONS, _learned, _snapshot
from test_memory_helpers import indexed
from test_memory_reconciler import chunk, entity, reconcile, time_node, verb

import peek
from peek.db import Database, open_database
from peek.memory import fts
from peek.memory.store import load_nodes
from peek.memory.turnbody import pack_turn, unpack_turn
from peek.packed import unpack_text
from peek.service import Peek


def _migration() -> Any:
    """Migration 0014 as a module (it is not importable by name)."""
    path = Path(peek.__file__).parent / "migrations" / "versions" / "0014_packed_turns.py"
    spec = importlib.util.spec_from_file_location("migration_0014", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_turn_body_round_trips_and_the_migration_packs_it_alike() -> None:
    words = ("Q: où est «APP_MODE» lu?\nA: app/config.py:4-5", "app mode config py",
             {"b.py": "2" * 40, "a.py": "1" * 40})
    body = pack_turn(*words)
    assert unpack_turn(body) == words
    assert list(unpack_turn(body)[2]) == ["a.py", "b.py"]  # paths sorted, as stored before
    assert _migration().pack_turn(*words) == body
    assert unpack_turn(pack_turn("", "", {})) == ("", "", {})


def _verb_index(db: Database, corpus_id: int) -> dict[str, int]:
    """The live verb index's vocabulary (term -> documents holding it; "" -> documents)."""
    table = fts.nodes_table(corpus_id)
    with db.raw_write() as raw:
        raw.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.v USING fts5vocab(main, {table}, "
                    "row)")
        found = {r[0]: r[1] for r in raw.execute("SELECT term, doc FROM temp.v")}
        raw.execute("DROP TABLE temp.v")
        found[""] = _documents(raw, f"main.{table}")
    return found


def _documents(raw: Any, table: str) -> int:
    """How many documents a full-text table counts (its totals record, the one BM25 reads)."""
    block = raw.execute(f"SELECT block FROM {table}_data WHERE id = 1").fetchone()[0]
    return fts._varint(block, 0)[0]


def _rebuilt_index(db: Database, corpus_id: int) -> tuple[dict[str, int], dict[int, str]]:
    """The vocabulary of a verb index built afresh from the current verbs, and their documents
    as `fts.verb_docs` makes them now."""
    with db.raw_write() as raw:
        rows = raw.execute("SELECT rowid, data FROM memory_nodes WHERE corpus_id = ? AND "
                           "kind = 'verb'", (corpus_id,)).fetchall()
        docs = dict(fts.verb_docs(raw, corpus_id, [(r, json.loads(unpack_text(d)))
                                                    for r, d in rows]))
        raw.execute(f'CREATE VIRTUAL TABLE temp.f USING fts5(body, detail = none, '
                    f'tokenize = "{fts.TOKENIZE}")')
        raw.executemany("INSERT INTO temp.f(rowid, body) VALUES (?, ?)", list(docs.items()))
        raw.execute("CREATE VIRTUAL TABLE temp.fv USING fts5vocab(temp, f, row)")
        found = {r[0]: r[1] for r in raw.execute("SELECT term, doc FROM temp.fv")}
        found[""] = _documents(raw, "temp.f")
        raw.execute("DROP TABLE temp.fv")
        raw.execute("DROP TABLE temp.f")
    return found, {int(k): v for k, v in docs.items()}


def test_the_contentless_verb_index_stays_exactly_what_its_documents_make(
        make_corpus: Any, tmp_path: Path) -> None:
    """Verbs rewritten by later sessions (new answers, merged names) are deleted from the
    index by their stored documents: the index equals one rebuilt from the current verbs."""
    with Peek(make_corpus(FILES), tmp_path / "home") as p:
        p.index()
        for i, question in enumerate(QUESTIONS * 3):
            session = p.ask(question).session
            p.record(session=session, edited=[sorted(FILES)[i % 2]], success=i % 3 != 2)
        vocabulary, docs = _rebuilt_index(p.db, p.corpus_id)
        assert _verb_index(p.db, p.corpus_id) == vocabulary and len(docs) > 5
        with p.db.query() as raw:
            stored = {r[0]: unpack_text(r[1]) for r in raw.execute(
                "SELECT rowid, doc FROM memory_nodes WHERE kind = 'verb'")}
            sql = raw.execute("SELECT sql FROM sqlite_master WHERE name = ?",
                              (fts.nodes_table(p.corpus_id),)).fetchone()[0]
        assert stored == docs
        assert "content = ''" in sql and "detail = none" in sql


@pytest.fixture
def store(tmp_path: Path, make_corpus: Any) -> Iterator[tuple[Database, int]]:
    """An indexed corpus with memory's full-text indexes, for the Reconciler to write to."""
    service = indexed(make_corpus({"notes.md": "# notes\n"}), tmp_path / "home")
    yield service.db, service.corpus_id
    service.close()


def test_a_verb_given_new_answers_is_reindexed_exactly(store: tuple[Database, int]) -> None:
    """An open question filled by later evidence changes the verb's document: the old one
    is deleted from the contentless index by its stored copy, the new one added."""
    db, cid = store
    with db.raw_write() as raw:
        fts.create(raw, cid)
    reconcile(store, [chunk("c1", 1, [entity("e1", "Ezra Edwards", "c1", "jumper")],
                            [verb("c1", 1, "e1", "TEXT:a wall", "None")])])
    before = _verb_index(db, cid)
    reconcile(store, [chunk("c2", 2, [entity("e1", "Ezra Edwards", "c2", "jumper")], [],
                            [time_node("c2", "April 9, 2026", ["e1"])])])
    after = _verb_index(db, cid)
    assert after == _rebuilt_index(db, cid)[0]
    assert after["april"] == 1 and "april" not in before and after["wall"] == before["wall"] == 1


def _check_0011(db: Database, before: dict[str, Any]) -> None:
    """The store as revision 0011 has it: turns in three columns, verb documents in the index."""
    with db.read() as conn:
        rows = conn.execute(text("SELECT turn_id, text, terms, blobs FROM memory_turns "
                                 "ORDER BY seq")).all()
        columns = conn.execute(text("SELECT * FROM memory_nodes")).keys()
    assert [(t.turn_id, t.text, " ".join(t.terms), t.blobs) for t in before["turns"]] == [
        (r[0], r[1], r[2], json.loads(r[3])) for r in rows]
    assert "doc" not in columns
    if db.backend == "sqlite":
        with db.query() as raw:
            cid = raw.execute("SELECT id FROM corpora").fetchone()[0]
            table = fts.nodes_table(cid)
            sql = raw.execute("SELECT sql FROM sqlite_master WHERE name = ?",
                              (table,)).fetchone()[0]
            indexed = dict(raw.execute(f"SELECT rowid, body FROM {table}").fetchall())
        assert "content" not in sql and len(indexed) > 3  # documents stored in the index
        _, docs = _rebuilt_index(db, cid)
        assert indexed == docs


def _round_trip(root: Path, home: Path, target: str | Path) -> None:
    """Downgrade a learned store to 0011, check its form, migrate it back up, compare."""
    from alembic import command

    sessions, before = _learned(root, home)
    db = open_database(target)
    run_alembic(db, command.downgrade, "0011")
    _check_0011(db, before)
    db.close()
    open_database(target).close()  # opening migrates to the head revision
    with Peek(root, home) as p:
        assert _snapshot(p, sessions) == before
        with p.db.read() as conn:
            bodies = conn.execute(text("SELECT body FROM memory_turns ORDER BY seq")).scalars()
            assert [unpack_turn(b) for b in bodies] == [
                (t.text, " ".join(t.terms), t.blobs) for t in before["turns"]]
            columns = set(conn.execute(text("SELECT * FROM memory_turns")).keys())
        assert not {"text", "terms", "blobs"} & columns
        if p.db.backend == "sqlite":
            vocabulary, docs = _rebuilt_index(p.db, p.corpus_id)
            assert _verb_index(p.db, p.corpus_id) == vocabulary
            session = p.ask(QUESTIONS[0]).session  # the converted index keeps growing exactly
            p.record(session=session, edited=["app/server.py"], success=True)
            assert _verb_index(p.db, p.corpus_id) == _rebuilt_index(p.db, p.corpus_id)[0]
        with p.db.read() as conn:
            assert len(load_nodes(conn, p.corpus_id)) >= len(before["nodes"])


def test_migration_0014_converts_an_existing_sqlite_store(make_corpus: Any, tmp_path: Path,
                                                          ) -> None:
    home = tmp_path / "home"
    _round_trip(make_corpus(FILES), home, home / "peek.db")


@pytest.mark.postgres
def test_migration_0014_converts_an_existing_postgres_store(
        make_corpus: Any, tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEEK_DATABASE_URL", pg_url)
    _round_trip(make_corpus(FILES), tmp_path / "home", pg_url)
