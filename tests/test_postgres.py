"""PostgreSQL as the store (issue 14): the same commands, the same answers, safe concurrency.

Every test here needs a server (`pg_url`, see conftest): PEEK_TEST_POSTGRES_URL, or a
throwaway cluster from local server binaries; without either they skip (in CI they fail).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import SAMPLE, run_peek

from peek.db import HEAD_REVISION, open_database
from peek.service import Peek

pytestmark = pytest.mark.postgres

QUESTIONS = ["where are redirects followed", "HTTPAdapter send request", "max retries",
             "session cookies", "guide redirects"]


def _hits(peek: Peek, query: str) -> list[tuple[str, int, float]]:
    return [(h.path, h.start_line, round(h.score, 6)) for h in peek.search(query, 10)]


def _pair(make_corpus: Callable[[dict[str, str | bytes]], Path], tmp_path: Path, pg_url: str,
          monkeypatch: pytest.MonkeyPatch) -> tuple[Peek, Peek]:
    """The same corpus indexed into a SQLite home and into PostgreSQL."""
    corpus = make_corpus(SAMPLE)
    lite = Peek(corpus, tmp_path / "lite")
    lite.index()
    monkeypatch.setenv("PEEK_DATABASE_URL", pg_url)
    pg = Peek(corpus, tmp_path / "pg")
    pg.index()
    return lite, pg


def test_migrations_run_and_a_reopen_does_nothing(pg_url: str) -> None:
    db = open_database(pg_url)
    with db.query() as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == \
            HEAD_REVISION
        tables = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    assert {"corpora", "files", "chunks", "map_entries", "memory_turns"} <= tables
    db.close()
    open_database(pg_url).close()


def test_search_ranks_exactly_as_sqlite(make_corpus: Callable[[dict[str, str | bytes]], Path],
                                        tmp_path: Path, pg_url: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    lite, pg = _pair(make_corpus, tmp_path, pg_url, monkeypatch)
    for query in QUESTIONS:
        assert _hits(pg, query) == _hits(lite, query), query
    lite.close()
    pg.close()


def test_record_and_memory_answer_as_on_sqlite(
        make_corpus: Callable[[dict[str, str | bytes]], Path], tmp_path: Path, pg_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    lite, pg = _pair(make_corpus, tmp_path, pg_url, monkeypatch)
    for peek in (lite, pg):
        for n, question in enumerate(QUESTIONS):
            result = peek.ask(question)
            peek.record(session=result.session, edited=["src/http/session.py"],
                        success=n % 2 == 0)
    for question in QUESTIONS:
        assert [c.path for c in pg.ask(question, learn=False).citations] == \
            [c.path for c in lite.ask(question, learn=False).citations]
        found = [round(i.score, 6) for i in pg.memory_search(question).results]
        assert found == [round(i.score, 6) for i in lite.memory_search(question).results]
    assert pg.map().text == lite.map().text
    learned = [(s.sessions, s.outcomes, s.ranker_updates) for s in (lite.status(), pg.status())]
    assert learned[0] == learned[1] and learned[0][1] == len(QUESTIONS)
    listed = [[(o.question, o.edited, o.success) for o in p.outcomes(limit=3,
               edited="src/http/session.py")] for p in (lite, pg)]
    assert listed[0] == listed[1] and len(listed[0]) == min(3, len(QUESTIONS))
    lite.close()
    pg.close()


def test_cli_end_to_end_with_db_option_and_a_redacted_url(
        make_corpus: Callable[[dict[str, str | bytes]], Path], tmp_path: Path,
        pg_url: str) -> None:
    corpus = str(make_corpus(SAMPLE))
    secret = pg_url.replace("://peek@", "://peek:hunter2@", 1)
    home = ["--home", str(tmp_path / "home"), "--db", secret]
    assert run_peek("index", corpus, *home).returncode == 0
    found = run_peek("search", corpus, "redirects", "--json", *home)
    assert json.loads(found.stdout)["results"][0]["path"] == "src/http/session.py"
    asked = json.loads(run_peek("ask", corpus, "where are redirects followed", "--json",
                                *home).stdout)
    recorded = run_peek("record", corpus, "--session", asked["session"], "--edited",
                        "src/http/session.py", "--success", *home)
    assert recorded.returncode == 0, recorded.stderr
    assert "src/http/session.py" in run_peek("map", corpus, *home).stdout
    doctor = run_peek("doctor", "--json", *home)
    report = json.loads(doctor.stdout)
    assert report["backend"]["name"] == "postgresql"
    assert report["backend"]["migration"] == f"at head {HEAD_REVISION}"
    assert "hunter2" not in doctor.stdout and "***" in report["store"]
    assert not (tmp_path / "home" / "peek.db").exists()  # everything lives on the server


def test_a_wrong_url_is_one_line_without_the_password(tmp_path: Path, pg_url: str) -> None:
    bad = pg_url.replace("://peek@", "://nobody:hunter2@", 1).replace("/postgres?",
                                                                      "/no_such_db?", 1)
    done = run_peek("status", str(tmp_path), "--db", bad)
    assert done.returncode != 0
    assert done.stderr.startswith("peek: error: cannot connect to ")
    assert "hunter2" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_concurrent_recorders_lose_no_map_update(
        make_corpus: Callable[[dict[str, str | bytes]], Path], tmp_path: Path,
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = str(make_corpus(SAMPLE))
    env = {"PEEK_DATABASE_URL": pg_url, "PEEK_HOME": str(tmp_path / "home")}
    assert run_peek("index", corpus, env=env).returncode == 0

    def record(n: int) -> str:
        traj = tmp_path / f"t{n}.json"
        traj.write_text(json.dumps({
            "question": f"question {n} about redirects",
            "steps": [{"tool": "read_file", "args": {"path": "src/http/session.py"},
                       "paths": ["src/http/session.py"]}],
            "answer": "see session.py", "citations": [],
            "outcome": {"edited_files": ["src/http/adapters.py"], "success": True}}))
        done = run_peek("record", corpus, "--trajectory", str(traj), "--json", env=env)
        assert done.returncode == 0, done.stderr
        return str(json.loads(done.stdout)["session"])

    with ThreadPoolExecutor(8) as pool:
        sessions = set(pool.map(record, range(8)))
    monkeypatch.setenv("PEEK_DATABASE_URL", pg_url)
    peek = Peek(corpus, tmp_path / "home")
    history = {v.session for v in peek.map_history(limit=None)}
    assert sessions <= history
    peek.close()


_HOLD = """
import sys, time
from peek.db import open_database
db = open_database(sys.argv[1])
with db.lock("index"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_killed_indexer_leaves_no_lock(pg_url: str) -> None:
    open_database(pg_url).close()
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, pg_url], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    db = open_database(pg_url)
    started = time.monotonic()
    with db.lock("index"):  # the server ended the dead holder's session, and its lock
        pass
    assert time.monotonic() - started < 10
    db.close()


def _rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table the migrations made (full-text indexes left out), sorted."""
    import sqlite3

    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE '%VIRTUAL%' "
            "AND name NOT LIKE '%fts%' AND name != 'sqlite_sequence'")]
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr)
                for n in names}


def test_migrate_store_round_trip_loses_nothing(
        make_corpus: Callable[[dict[str, str | bytes]], Path], tmp_path: Path,
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = make_corpus(SAMPLE)
    lite = Peek(corpus, tmp_path / "lite")
    lite.index()
    for n, question in enumerate(QUESTIONS):
        lite.record(session=lite.ask(question).session, edited=["src/http/adapters.py"],
                    success=n % 2 == 0)
    before = {q: (_hits(lite, q), [round(i.score, 6) for i in lite.memory_search(q).results])
              for q in QUESTIONS}
    lite.close()

    there = run_peek("migrate-store", "--to", pg_url, "--home", str(tmp_path / "lite"))
    assert there.returncode == 0, there.stderr
    again = run_peek("migrate-store", "--to", pg_url, "--home", str(tmp_path / "lite"))
    assert again.returncode != 0 and "already holds corpora" in again.stderr
    back = tmp_path / "back" / "peek.db"
    home = ["--home", str(tmp_path / "unused"), "--db", pg_url]
    done = run_peek("migrate-store", "--to", f"sqlite:///{back}", "--json", *home)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"]["memory_turns"] > 0

    assert _rows(back) == _rows(tmp_path / "lite" / "peek.db")
    monkeypatch.setenv("PEEK_DATABASE_URL", pg_url)
    on_pg = Peek(corpus, tmp_path / "unused")
    monkeypatch.delenv("PEEK_DATABASE_URL")
    returned = Peek(corpus, tmp_path / "back")
    for peek in (on_pg, returned):
        for q in QUESTIONS:
            assert (_hits(peek, q), [round(i.score, 6) for i in peek.memory_search(q).results]) \
                == before[q], q
        peek.close()


def test_parallel_index_runs_are_serialized(
        make_corpus: Callable[[dict[str, str | bytes]], Path], tmp_path: Path,
        pg_url: str) -> None:
    files: dict[str, str | bytes] = {f"pkg/m{i}.py": f"def f{i}():\n    return {i}\n"
                                     for i in range(60)}
    corpus = str(make_corpus({**SAMPLE, **files}))
    env = {"PEEK_DATABASE_URL": pg_url, "PEEK_HOME": str(tmp_path / "home")}
    with ThreadPoolExecutor(3) as pool:
        runs = list(pool.map(lambda _: run_peek("index", corpus, "--json", env=env), range(3)))
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    assert sum(json.loads(r.stdout)["added"] for r in runs) == len(SAMPLE) + 60  # once each
    db = open_database(pg_url)
    with db.query() as conn:
        paths = [r[0] for r in conn.execute("SELECT path FROM files")]
        fts = conn.execute("SELECT COUNT(*) FROM chunks_fts_1").fetchone()[0]
        chunks = conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    db.close()
    assert len(paths) == len(set(paths)) == len(SAMPLE) + 60 and fts == chunks


def _scratch_schemas(pg_url: str) -> list[str]:
    import psycopg

    from peek.postgres import libpq_url

    with psycopg.connect(libpq_url(pg_url)) as conn:
        return [r[0] for r in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'peek_scratch_%'")]


def _store_counts(peek: Peek) -> tuple[int, int, int]:
    with peek.db.query() as conn:
        found = conn.execute("SELECT (SELECT COUNT(*) FROM agent_sessions), "
                             "(SELECT COUNT(*) FROM map_edits), "
                             "(SELECT COUNT(*) FROM session_outcomes)").fetchone()
    return int(found[0]), int(found[1]), int(found[2])


@pytest.mark.slow
def test_eval_learn_and_replay_answer_as_on_sqlite_and_leave_no_scratch_schema(
        make_corpus: Callable[[dict[str, str | bytes]], Path], tmp_path: Path,
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = make_corpus(SAMPLE)
    items = [{"id": f"q{n}", "question": q, "gold_files": ["src/http/session.py"]}
             for n, q in enumerate(QUESTIONS)]
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("".join(json.dumps(i) + "\n" for i in items))
    history = tmp_path / "history.jsonl"
    history.write_text("".join(json.dumps({**i, "corpus": corpus.name}) + "\n" for i in items))
    reports = {}
    for backend, db in (("sqlite", []), ("postgresql", ["--db", pg_url])):
        home = ["--home", str(tmp_path / backend), *db]
        assert run_peek("index", str(corpus), *home).returncode == 0
        if db:
            monkeypatch.setenv("PEEK_DATABASE_URL", pg_url)
        user = Peek(corpus, tmp_path / backend)
        before = _store_counts(user)
        learn = run_peek("eval", str(qfile), "--corpus", str(corpus), "--learn", "2", "--json",
                         *home)
        replay = run_peek("eval", "--replay", str(history), "--corpus", str(corpus.parent),
                          "--json", *home)
        assert learn.returncode == 0 and replay.returncode == 0, learn.stderr + replay.stderr
        assert _store_counts(user) == before  # the user's store was never changed
        user.close()
        monkeypatch.delenv("PEEK_DATABASE_URL", raising=False)
        reports[backend] = (json.loads(learn.stdout), json.loads(replay.stdout)["arms"])
    lite, pg = reports["sqlite"], reports["postgresql"]
    assert {k: v for k, v in pg[0].items() if "seconds" not in k and k != "no_map"} == \
        {k: v for k, v in lite[0].items() if "seconds" not in k and k != "no_map"}
    assert pg[0]["no_map"]["recall@5"] == lite[0]["no_map"]["recall@5"]
    for arm in ("learned", "off"):
        assert pg[1][arm]["all"]["recall@5"] == lite[1][arm]["all"]["recall@5"]
        assert pg[1][arm]["all"]["mrr"] == lite[1][arm]["all"]["mrr"]
    assert _scratch_schemas(pg_url) == []


def test_scratch_schemas_are_dropped_when_the_evaluation_fails(
        make_corpus: Callable[[dict[str, str | bytes]], Path], tmp_path: Path,
        pg_url: str) -> None:
    from peek.evals.evaluate import scratch_stores

    source = Peek(make_corpus(SAMPLE), tmp_path / "home", database_url=pg_url)
    source.index()
    with pytest.raises(RuntimeError, match="boom"), scratch_stores(pg_url) as scratch:
        copy = scratch.copy(source, "learned", reset_map=True)
        assert copy.db.url != source.db.url and copy.search("redirects", 3)
        assert copy.map().entries == ()
        assert len(_scratch_schemas(pg_url)) == 1
        raise RuntimeError("boom")
    assert _scratch_schemas(pg_url) == []
    assert source.map().entries  # the source's map is untouched
    source.close()


def _checkpoint_rows(pg_url: str, session: str) -> int:
    import psycopg

    from peek.postgres import libpq_url

    with psycopg.connect(libpq_url(pg_url)) as conn:
        row = conn.execute("SELECT COUNT(*) FROM checkpoints WHERE thread_id = %s", (session,))
        return int(row.fetchone()[0])  # type: ignore[index]


def test_a_stopped_session_resumes_on_another_machine_from_checkpoints_on_the_server(
        make_corpus: Callable[[dict[str, str | bytes]], Path], tmp_path: Path,
        pg_url: str) -> None:
    from peek.agent.loop import run_agent
    from peek.agent.models import Reply, ToolCall, Usage
    from peek.agent.scripted import ScriptedModel
    from peek.agent.session import Budgets

    corpus = make_corpus(SAMPLE)
    here = Peek(corpus, tmp_path / "here", database_url=pg_url)
    here.index()
    model = ScriptedModel([
        Reply("", (ToolCall("c1", "read_file", {"path": "src/http/adapters.py", "start": 1,
                                                "end": 3}),), Usage(10, 5)),
        Reply("Session.send hands requests to HTTPAdapter.send (src/http/session.py:15-16).",
              (), Usage(10, 5))])
    first = run_agent(here, "Who sends requests?", model, Budgets(max_steps=1))
    assert first.stopped_by == "max_steps" and _checkpoint_rows(pg_url, first.session) > 0
    there = Peek(corpus, tmp_path / "there", database_url=pg_url)  # another home, same store
    done = run_agent(there, "", model, Budgets(max_steps=5), session=first.session, resume=True)
    assert done.stopped_by is None and done.steps == 2
    assert [c.path for c in done.citations] == ["src/http/session.py"]
    assert _checkpoint_rows(pg_url, first.session) == 0  # answered: nothing left to resume
    assert not list(tmp_path.rglob("checkpoints.db"))  # nothing of it in a home
    back = run_peek("migrate-store", "--to", f"sqlite:///{tmp_path / 'back.db'}", "--db",
                    pg_url, "--home", str(tmp_path / "here"))
    assert back.returncode == 0, back.stderr  # the checkpoint tables do not stop a move
    here.close()
    there.close()


def test_upgrading_to_porter_terms_rebuilds_the_full_text_tables(
        make_corpus: Callable[[dict[str, str | bytes]], Path], tmp_path: Path, pg_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Migration 0013 on PostgreSQL: lexemes from before (here: spoiled) are rebuilt from the
    stored rows, and search ranks as on SQLite again."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    lite, pg = _pair(make_corpus, tmp_path, pg_url, monkeypatch)
    table = f"chunks_fts_{pg.corpus_id}"
    pg.close()
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parents[1] /
                                               "migrations"))
    db = open_database(pg_url)
    with db.write() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0008")
        conn.execute(text(f"UPDATE {table}_terms SET lexeme = 'spoiled'"))
    db.close()
    again = Peek(lite.root, tmp_path / "pg")  # opening migrates to head
    for query in QUESTIONS:
        assert _hits(again, query) == _hits(lite, query), query
    again.close()
    lite.close()
