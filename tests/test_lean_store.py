"""What a recorded session repeats is stored once (issue 9, store growth), and migration 0011.

A store written at revision 0009 (zlib trajectories copied into the map's session log, whole
results with rankings, memory edges in a rowid table, node keys in full) is converted by the
migration and reads back exactly as it was written; downgrading converts back.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import run_alembic
from sqlalchemy import text

from peek.agent.session import SessionStore, stored_ranking
from peek.contextmap.sessionlog import logged_trajectory
from peek.contextmap.store import edits_between
from peek.contextmap.trajectory import Trajectory
from peek.db import Database, driver, open_database
from peek.memory.store import entities_by_key, key_digest, load_nodes, load_turns, node_key
from peek.packed import unpack_json
from peek.service import Peek

FILES = {
    "app/config.py": "import os\n\n\ndef load_config():\n    return os.environ.get('APP_MODE')\n",
    "app/server.py": "from app.config import load_config\n\n\ndef serve():\n    load_config()\n",
}
QUESTIONS = ["where is the app mode read from the environment?", "what does serve call?"]
HOST = {"question": "who serves the app?", "answer": "app/server.py serve()",
        "steps": [{"tool": "read", "args": {"path": "app/server.py"}, "paths": ["app/server.py"],
                   "ok": True}],
        "citations": [{"path": "app/server.py", "start_line": 4, "end_line": 5}]}


def _learned(root: Path, home: Path) -> tuple[list[str], dict[str, Any]]:
    """Sessions asked and recorded, and one host trajectory recorded: ids and a snapshot."""
    with Peek(root, home) as peek:
        peek.index()
        sessions = [peek.ask(q).session for q in QUESTIONS]
        for session in sessions:
            peek.record(session=session, edited=["app/config.py"], success=True)
        peek.record(HOST, edited=["app/server.py"], success=True)
        return sessions, _snapshot(peek, sessions)


def _snapshot(peek: Peek, sessions: list[str]) -> dict[str, Any]:
    """Everything the changed tables hold, read back through peek's own readers."""
    store = SessionStore(peek.db, peek.corpus_id)
    with peek.db.read() as conn:
        raw = driver(conn)
        log = [(s, Trajectory.model_validate_json(logged_trajectory(raw, peek.corpus_id, t)))
               for s, t in raw.execute("SELECT session, trajectory FROM map_sessions ORDER BY id")]
        edges = sorted(tuple(r) for r in raw.execute(
            "SELECT corpus_id, verb_id, node_id, open, seq FROM memory_edges"))
        nodes = load_nodes(conn, peek.corpus_id)
        entities = [n for n in nodes if n.id.startswith("e")]
        found = entities_by_key(conn, peek.corpus_id, [node_key(e) for e in entities])
        rankings = [stored_ranking(conn, peek.corpus_id, s) for s in sessions]
        turns = load_turns(conn, peek.corpus_id)
        edits = edits_between(conn, peek.corpus_id, 0, 1 << 30)
    return {"sessions": [store.load(s) for s in sessions], "log": log, "edges": edges,
            "nodes": [n.model_dump() for n in nodes], "rankings": rankings,
            "keys": {n.id: node_key(n) for n in nodes}, "turns": turns,
            "edits": edits,
            "by_key": sorted(e.id for e in found),
            "search": [peek.memory_search(q, k=3).to_dict() for q in QUESTIONS]}


def test_a_stored_result_leaves_out_what_its_trajectory_holds(make_corpus: Any,
                                                              tmp_path: Path) -> None:
    with Peek(make_corpus(FILES), tmp_path / "home") as peek:
        peek.index()
        result = peek.ask(QUESTIONS[0])
        stored = SessionStore(peek.db, peek.corpus_id).load(result.session)
        with peek.db.read() as conn:
            record = conn.execute(text("SELECT result FROM agent_sessions")).scalar_one()
    assert json.loads(stored.result or "") == result.to_dict()
    assert stored.ranking is not None
    slim = unpack_json(record)
    assert slim["answer"] == {"$trajectory": "answer"} and result.answer
    assert slim["citations"] == {"$trajectory": "citations"} and result.citations


def test_the_map_log_references_a_stored_session_and_keeps_a_host_trajectory(
        make_corpus: Any, tmp_path: Path) -> None:
    sessions, snap = _learned(make_corpus(FILES), tmp_path / "home")
    with open_database(tmp_path / "home" / "peek.db").read() as conn:
        rows = conn.execute(text("SELECT session, trajectory FROM map_sessions ORDER BY id")).all()
    kinds = {s: set(unpack_json(t)) for s, t in rows}
    assert all(kinds[s] == {"agent_session", "outcome"} for s in sessions)
    host = [k for s, k in kinds.items() if s not in sessions]
    assert host == [{"question", "steps", "answer", "citations", "outcome"}]
    learned = dict(snap["log"])
    for session, stored in zip(sessions, snap["sessions"], strict=True):
        traj = learned[session].model_dump()
        assert traj["outcome"] == {"edited_files": ["app/config.py"], "success": True}
        assert traj["answer"] == json.loads(stored.trajectory)["answer"]


def test_rewriting_a_stored_trajectory_keeps_what_the_map_learned(make_corpus: Any,
                                                                  tmp_path: Path) -> None:
    with Peek(make_corpus(FILES), tmp_path / "home") as peek:
        peek.index()
        result = peek.ask(QUESTIONS[0])
        peek.record(session=result.session, edited=["app/config.py"], success=True)
        with peek.db.read() as conn:
            raw = driver(conn)
            blob = raw.execute("SELECT trajectory FROM map_sessions").fetchone()[0]
            learned = logged_trajectory(raw, peek.corpus_id, blob)
        resumed = replace(result, answer="a resumed answer",
                          trajectory={**result.trajectory, "answer": "a resumed answer"})
        SessionStore(peek.db, peek.corpus_id).finish(resumed)  # what a resumed ask does
        with peek.db.read() as conn:
            raw = driver(conn)
            blob = raw.execute("SELECT trajectory FROM map_sessions").fetchone()[0]
            assert logged_trajectory(raw, peek.corpus_id, blob) == learned
        assert set(unpack_json(blob)) != {"agent_session", "outcome"}  # now a full copy
        stored = SessionStore(peek.db, peek.corpus_id).load(result.session)
        assert json.loads(stored.result or "")["answer"] == "a resumed answer"


def test_node_keys_are_stored_as_digests_and_looked_up_exactly(make_corpus: Any,
                                                               tmp_path: Path) -> None:
    _, snap = _learned(make_corpus(FILES), tmp_path / "home")
    with open_database(tmp_path / "home" / "peek.db").read() as conn:
        norms = dict(conn.execute(text("SELECT id, norm FROM memory_nodes")).all())
    assert norms == {i: key_digest(k) for i, k in snap["keys"].items()}
    assert "file:app/config.py" in snap["keys"].values()
    assert snap["by_key"] == sorted(i for i in snap["keys"] if i.startswith("e"))
    assert key_digest("file:app/config.py") != key_digest("file:app/server.py")


def _check_0009(db: Database, sessions: list[str], before: dict[str, Any]) -> None:
    """The downgraded store is in 0009's form, holding the same data."""
    with db.read() as conn:
        log = conn.execute(text("SELECT trajectory FROM map_sessions ORDER BY id")).scalars()
        assert [Trajectory.model_validate_json(zlib.decompress(bytes(t))) for t in log] == [
            t for _, t in before["log"]]
        results = dict(conn.execute(text("SELECT id, result FROM agent_sessions")).all())
        rankings = dict(conn.execute(text("SELECT id, ranking FROM agent_sessions")).all())
        norms = dict(conn.execute(text("SELECT id, norm FROM memory_nodes")).all())
        blobs = conn.execute(text("SELECT blobs FROM memory_turns ORDER BY seq")).scalars().all()
        edits = conn.execute(text('SELECT "before", "after" FROM map_edits ORDER BY id')).all()
    assert [json.loads(b) for b in blobs] == [t.blobs for t in before["turns"]]
    assert [tuple(None if v is None else json.loads(v) for v in e) for e in edits] == [
        (e.before, e.after) for e in before["edits"]] and len(edits) > 3
    assert any(t.blobs for t in before["turns"])
    for session, stored, ranking in zip(sessions, before["sessions"], before["rankings"],
                                        strict=True):
        assert unpack_json(results[session]) == json.loads(stored.result)
        assert bytes(rankings[session]) == ranking
    assert norms == before["keys"]
    if db.backend == "sqlite":
        with db.query() as raw:
            sql = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'memory_edges'"
                              ).fetchone()[0]
            indexes = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE "
                                                 "tbl_name = 'memory_edges'")}
        assert "WITHOUT ROWID" not in sql
        assert "ix_memory_edges_node" in indexes and "ix_memory_edges_open" not in indexes


def _round_trip(root: Path, home: Path, target: str | Path) -> None:
    """Downgrade a learned store to 0009, check its form, migrate it back up, compare."""
    from alembic import command

    sessions, before = _learned(root, home)
    db = open_database(target)
    run_alembic(db, command.downgrade, "0009")
    _check_0009(db, sessions, before)
    db.close()
    open_database(target).close()  # opening migrates to the head revision
    with Peek(root, home) as peek:
        assert _snapshot(peek, sessions) == before
        with peek.db.read() as conn:
            columns = conn.execute(text("SELECT * FROM agent_sessions")).keys()
            norms = dict(conn.execute(text("SELECT id, norm FROM memory_nodes")).all())
            results = conn.execute(text("SELECT result FROM agent_sessions")).scalars().all()
        assert "ranking" not in columns
        assert norms == {i: key_digest(k) for i, k in before["keys"].items()}
        assert all(unpack_json(r)["answer"] == {"$trajectory": "answer"} for r in results)
        session = peek.ask(QUESTIONS[1]).session  # the log written from now on references
        peek.record(session=session, edited=["app/server.py"], success=True)
        with peek.db.read() as conn:
            log = conn.execute(text("SELECT trajectory FROM map_sessions ORDER BY id")).scalars()
            refs = [bytes(t)[:1] == b"\x78" or set(unpack_json(t)) for t in log]
        assert refs == [True, True, True, {"agent_session", "outcome"}]
        if peek.db.backend == "sqlite":
            with peek.db.query() as raw:
                sql = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'memory_edges'"
                                  ).fetchone()[0]
            assert "WITHOUT ROWID" in sql


def test_migration_0011_converts_an_existing_sqlite_store(make_corpus: Any, tmp_path: Path,
                                                          ) -> None:
    home = tmp_path / "home"
    _round_trip(make_corpus(FILES), home, home / "peek.db")


@pytest.mark.postgres
def test_migration_0011_converts_an_existing_postgres_store(
        make_corpus: Any, tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEEK_DATABASE_URL", pg_url)
    _round_trip(make_corpus(FILES), tmp_path / "home", pg_url)
