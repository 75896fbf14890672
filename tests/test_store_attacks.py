"""Attacks on the store as migration 0014 left it (packed memory turns, a contentless verb
index whose documents live in `memory_nodes.doc`), with real parts: `peek` subprocesses,
SQLite files, `kill -9`, and the official MCP client.

- kill -9 while a command migrates a 0011 store to 0014: the store stays whole, opens at head
  on the next command and answers as a store migrated without interruption;
- a damaged turn body or verb document: every front door that reads it gives one line, and
  nothing more is lost (a verb document is derived, so a damaged one is rebuilt);
- records and ingests at once: no session or turn lost, the verb index still exact.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from helpers import PEEK_BIN, SAMPLE, run_alembic, run_peek, write_tree
from mcp import ClientSession, StdioServerParameters, stdio_client
from test_adversarial import assert_one_line
from test_packed_turns import _rebuilt_index, _verb_index

from peek.db import HEAD_REVISION, open_database
from peek.memory.turnbody import pack_turn, unpack_turn
from peek.packed import pack_json, pack_text, unpack_text
from peek.service import Peek

QUESTIONS = ["where are redirects followed?", "how are cookies kept?", "what sends requests?"]
EDITED = "src/http/session.py"
FRESH_WAL = 32  # a WAL file holding only its header: nothing written yet


def chat(path: Path, turns: int, first: int = 0, session: str = "s") -> Path:
    """A conversation log of `turns` turns, 8 to a session."""
    with path.open("w") as out:
        for i in range(first, first + turns):
            out.write(json.dumps({
                "id": f"t{i}", "speaker": ["Ann", "Bo"][i % 2], "session": f"{session}{i // 8}",
                "time": f"2026-01-{1 + (i // 8) % 28:02d}T10:00:00",
                "text": f"Ann asked Bo about redirect {i} in session.py and cookie jar {i % 17}",
            }) + "\n")
    return path


def learned(base: Path, turns: int) -> tuple[Path, Path]:
    """A corpus and a home whose store holds recorded sessions and an ingested log."""
    root = write_tree(base / "corpus", SAMPLE).resolve()
    home = base / "home"
    with Peek(root, home) as peek:
        peek.index()
        for question in QUESTIONS:
            peek.record(session=peek.ask(question).session, edited=[EDITED], success=True)
        peek.memory_ingest(chat(base / "chat.jsonl", turns))
    return root, home


def env(home: Path) -> dict[str, str]:
    return {"PEEK_HOME": str(home)}


def answers(root: Path, home: Path) -> dict[str, Any]:
    """What the store serves: memory search, summary and episodes, the map, the status."""
    out: dict[str, Any] = {}
    for name, argv in {"search": ["memory", "search", str(root), "redirect 7 cookie jar"],
                       "memory": ["memory", "show", str(root)],
                       "episodes": ["memory", "episodes", str(root)],
                       "map": ["map", "show", str(root)],
                       "status": ["status", str(root)]}.items():
        done = run_peek(*argv, "--json", env=env(home))
        assert done.returncode == 0, done.stderr
        out[name] = json.loads(done.stdout)
    out["status"].pop("index_age_seconds")
    return out


def revision(db: Path) -> tuple[str, str]:
    """(schema revision, integrity check) of a store file, read as any SQLite client would."""
    with closing(sqlite3.connect(db)) as conn:  # closed now: an open one would hold locks
        found = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        return found, conn.execute("PRAGMA integrity_check").fetchone()[0]


def kill_migrating(root: Path, home: Path, wal_bytes: int | None, after_s: float) -> int:
    """Start a command that migrates the store and SIGKILL it once its WAL file has grown past
    `wal_bytes` (the migration is writing) or, with None, after `after_s`; the WAL's size then."""
    wal = home / "peek.db-wal"
    proc = subprocess.Popen([str(PEEK_BIN), "memory", "search", str(root), "redirect"],
                            env={**os.environ, **env(home)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    started = time.monotonic()
    while proc.poll() is None:
        size = wal.stat().st_size if wal.exists() else 0
        if (size > wal_bytes) if wal_bytes is not None else time.monotonic() - started > after_s:
            break
        time.sleep(0.0005)
    size = wal.stat().st_size if wal.exists() else 0
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return size


@pytest.mark.slow
def test_kill_9_during_migration_0014_leaves_a_store_that_migrates_and_answers_alike(
        tmp_path: Path) -> None:
    """SQLite migrations run one transaction per revision (alembic: no transactional DDL on
    SQLite, so a transaction per migration, which the engine's "begin" event opens with BEGIN),
    and 0014's ALTER TABLE DROP COLUMN and FTS5 rebuild are inside it: a kill anywhere leaves
    0011 or 0014, never a half."""
    from alembic import command

    root, home = learned(tmp_path, turns=3000)
    db = open_database(home / "peek.db")
    run_alembic(db, command.downgrade, "0011")
    db.close()
    template = tmp_path / "home-0011"
    shutil.copytree(home, template)
    assert revision(template / "peek.db") == ("0011", "ok")
    expected = answers(root, home)  # migrated without interruption
    inside, outcomes = 0, []
    trials = [(FRESH_WAL, 0.0), (64_000, 0.0), (512_000, 0.0), (1_500_000, 0.0), (None, 0.5),
              (None, 0.9), (None, 1.3)]
    for wal_bytes, after_s in trials:
        shutil.rmtree(home)
        shutil.copytree(template, home)
        size = kill_migrating(root, home, wal_bytes, after_s)
        found, check = revision(home / "peek.db")
        assert check == "ok" and found in ("0011", "0014", HEAD_REVISION), (
            wal_bytes, after_s, found, check)  # a kill between revisions leaves the last done
        inside += found == "0011" and size > FRESH_WAL  # killed with the migration's pages
        outcomes.append((wal_bytes, after_s, size, found))
        assert answers(root, home) == expected, (wal_bytes, after_s, found)  # written, undone
        assert revision(home / "peek.db") == (HEAD_REVISION, "ok")
    print("kills (WAL trigger, delay, WAL bytes at the kill, revision after):", outcomes)
    assert inside >= 1, outcomes  # at least one kill landed inside 0014's transaction
    with Peek(root, home) as peek:  # the last store keeps learning with an exact verb index
        peek.record(session=peek.ask(QUESTIONS[0]).session, edited=[EDITED], success=True)
        assert _verb_index(peek.db, peek.corpus_id) == _rebuilt_index(peek.db, peek.corpus_id)[0]


def test_a_cut_padded_or_foreign_record_is_a_store_error() -> None:
    """Raw deflate has no checksum: a record cut short or padded must not read as a value."""
    from peek.errors import StoreError
    from peek.packed import unpack_json

    good = pack_text("app/config.py load config mode")
    for bad in (good[:-3], good + b"\x00junk", b"\x01" + b"\xff" * 40):
        with pytest.raises(StoreError, match="damaged"):
            unpack_text(bad)
    for foreign in (b"\xde\xad\xbe\xef", b""):
        with pytest.raises(StoreError, match="damaged or from a newer peek"):
            unpack_text(foreign)
    with pytest.raises(StoreError, match="damaged"):
        unpack_json(pack_text("[1,2"))
    with pytest.raises(StoreError, match="memory turn 't9' cannot be read"):
        unpack_turn(pack_json(["text", "terms"]), "t9")
    assert unpack_turn(pack_turn("a", "b", {}), "t1") == ("a", "b", {})


SMALL_TURNS = 24


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A learned store small enough to copy per test: (base, corpus, home)."""
    base = tmp_path_factory.mktemp("attacks")
    root, home = learned(base, SMALL_TURNS)
    return base, root, home


def copy_home(small: tuple[Path, Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    base, root, home = small
    mine = tmp_path / "home"
    shutil.copytree(home, mine)
    return root, mine


def table_bytes(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row peek learns into, as stored bytes, to show that nothing else changed."""
    with closing(sqlite3.connect(db)) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in (
            "memory_turns", "memory_nodes", "agent_sessions", "map_sessions", "map_entries")}


LAST = f"t{SMALL_TURNS - 1}"  # the newest turn: every write continues from it
DAMAGE = {
    "garbage": lambda body: b"\xde\xad\xbe\xef" * 4,
    "cut": lambda body: body[: len(body) // 2],
    "shape": lambda body: pack_json({"text": "x"}),
    "null": lambda body: None,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_turn_body_is_one_line_at_every_door_and_loses_nothing(
        small: tuple[Path, Path, Path], tmp_path: Path, damage: str) -> None:
    root, home = copy_home(small, tmp_path)
    db = home / "peek.db"
    with closing(sqlite3.connect(db)) as conn, conn:
        body = conn.execute("SELECT body FROM memory_turns WHERE turn_id = ?", (LAST,)).fetchone()
        conn.execute("UPDATE memory_turns SET body = ? WHERE turn_id = ?",
                     (DAMAGE[damage](body[0]), LAST))
    asked = run_peek("ask", str(root), QUESTIONS[1], "--json", env=env(home))
    assert asked.returncode == 0, asked.stderr  # asking reads no memory turn
    session = json.loads(asked.stdout)["session"]
    before = table_bytes(db)
    log = chat(tmp_path / "more.jsonl", 3, first=500)
    doors = [["memory", "search", str(root), f"redirect {SMALL_TURNS - 1}"],
             ["record", str(root), "--session", session, "--edited", EDITED, "--success"],
             ["memory", "ingest", str(root), str(log)]]
    for argv in doors:
        assert_one_line(run_peek(*argv, env=env(home)), f"memory turn '{LAST}' cannot be read")
    assert table_bytes(db) == before  # refused whole: nothing half-written
    if damage != "garbage":
        return
    mcp = asyncio.run(mcp_calls(root, home, session))
    for name, (is_error, text) in mcp.items():
        assert is_error and f"memory turn '{LAST}' cannot be read" in text, (name, text)
        assert "\n" not in text and "Traceback" not in text, text
    assert table_bytes(db) == before
    assert revision(db)[1] == "ok"


async def mcp_calls(root: Path, home: Path, session: str) -> dict[str, tuple[bool, str]]:
    """peek_memory_search and peek_record through the official MCP client, over stdio."""
    params = StdioServerParameters(command=sys.executable, args=[
        "-m", "peek.cli", "mcp", "--home", str(home), "--root", str(root)])
    calls = {"peek_memory_search": {"corpus": str(root), "query": f"redirect {SMALL_TURNS - 1}"},
             "peek_record": {"corpus": str(root), "question": "who follows redirects?",
                             "files_read": [EDITED], "files_edited": [EDITED], "success": True,
                             "session": f"host-{session}"}}
    out: dict[str, tuple[bool, str]] = {}
    async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        for tool, args in calls.items():
            result = await client.call_tool(tool, args)
            out[tool] = (bool(result.is_error),
                         "".join(getattr(c, "text", "") for c in result.content))
    return out


def test_a_damaged_turn_fails_peek_index_until_it_is_forgotten(tmp_path: Path) -> None:
    """`peek index` marks memory citing changed code stale, which reads every turn: a damaged
    one is its one-line error, after the code index (which needs no memory) was written.
    `peek memory forget` removes the damaged turn (it need not be read), and the next index
    marks memory stale again and exits 0."""
    root, home = learned(tmp_path, 8)
    with closing(sqlite3.connect(home / "peek.db")) as conn, conn:
        conn.execute("UPDATE memory_turns SET body = ? WHERE turn_id = 't3'", (b"\x01junk",))
    (root / "src" / "http" / "late.py").write_text("def late_arrival():\n    return 1\n")
    assert_one_line(run_peek("index", str(root), env=env(home)), "memory turn 't3' cannot be read")
    found = run_peek("search", str(root), "late_arrival", "--json", env=env(home))
    assert "src/http/late.py" in found.stdout
    assert revision(home / "peek.db")[1] == "ok"
    forgot = run_peek("memory", "forget", str(root), "t3", "--reason", "damaged", "--json",
                      env=env(home))
    assert forgot.returncode == 0, forgot.stderr
    assert json.loads(forgot.stdout)["damaged"] == ["t3"]
    (root / EDITED).write_text((root / EDITED).read_text() + "\n# edited after the repair\n")
    assert run_peek("index", str(root), env=env(home)).returncode == 0
    with Peek(root, home) as peek:
        found = peek.memory_search("redirect 3 cookie jar", k=10).results
        assert found and all(h.turn_ids != ["t3"] for h in found)
        assert any(t.stale for t in _recorded(peek))  # the edit marked the sessions stale
    assert revision(home / "peek.db")[1] == "ok"


def _recorded(peek: Peek) -> list[Any]:
    from peek.memory.store import load_turns

    with peek.db.read() as conn:
        return [t for t in load_turns(conn, peek.corpus_id) if t.source == "code"]


def test_damaged_verb_documents_are_rebuilt_by_the_next_record(
        small: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """A verb's saved document only serves to delete it from the contentless index: when one
    cannot be read, the next write rebuilds the index from the verbs, and learns as usual."""
    root, home = copy_home(small, tmp_path)
    db = home / "peek.db"
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE memory_nodes SET doc = ? WHERE doc IS NOT NULL",
                     (b"\x01" + bytes(range(40)),))
        data = dict(conn.execute("SELECT id, data FROM memory_nodes").fetchall())
    asked = run_peek("ask", str(root), QUESTIONS[2], "--json", env=env(home))
    session = json.loads(asked.stdout)["session"]
    done = run_peek("record", str(root), "--session", session, "--edited", EDITED, "--success",
                    "--json", env=env(home))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "applied"
    with closing(sqlite3.connect(db)) as conn, conn:
        kept = dict(conn.execute("SELECT id, data FROM memory_nodes").fetchall())
        docs = conn.execute("SELECT doc FROM memory_nodes WHERE kind = 'verb'").fetchall()
    assert set(data) < set(kept)  # every node kept, new ones learned
    assert all(unpack_text(d[0]) for d in docs)  # every document readable again
    with Peek(root, home) as peek:
        assert _verb_index(peek.db, peek.corpus_id) == _rebuilt_index(peek.db, peek.corpus_id)[0]
        assert peek.memory_search("redirect 3 cookie jar", k=3).to_dict()["results"]


def test_records_and_an_ingest_at_once_lose_nothing_and_keep_the_verb_index_exact(
        small: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """Three `peek record` processes and a `peek memory ingest` started together on one
    corpus: every session and turn is kept once, and the contentless verb index is exactly
    the one its verbs make (a lost or doubled document would show in its counts)."""
    root, home = copy_home(small, tmp_path)
    with Peek(root, home) as peek:
        sessions = [peek.ask(f"{q} (take {i})").session for i, q in enumerate(QUESTIONS)]
    log = chat(tmp_path / "more.jsonl", 40, first=1000, session="z")
    argvs = [["record", str(root), "--session", s, "--edited", EDITED, "--success", "--json"]
             for s in sessions] + [["memory", "ingest", str(root), str(log), "--json"]]
    procs = [subprocess.Popen([str(PEEK_BIN), *argv], env={**os.environ, **env(home)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for argv in argvs]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), outs
    assert [json.loads(o)["status"] for o, _ in outs[:-1]] == ["applied"] * len(sessions)
    assert json.loads(outs[-1][0])["added"] == 40
    db = home / "peek.db"
    with closing(sqlite3.connect(db)) as conn, conn:
        logged = {r[0] for r in conn.execute("SELECT session FROM map_sessions")}
        turns = [r[0] for r in conn.execute("SELECT turn_id FROM memory_turns")]
    assert set(sessions) <= logged
    assert {f"session:{s}:outcome" for s in sessions} | {f"t{i}" for i in range(1000, 1040)
                                                         } <= set(turns)
    assert len(turns) == len(set(turns))  # no turn twice
    assert revision(db) == (HEAD_REVISION, "ok")
    with Peek(root, home) as peek:
        assert _verb_index(peek.db, peek.corpus_id) == _rebuilt_index(peek.db, peek.corpus_id)[0]
        with peek.db.query() as raw:
            for (body,) in raw.execute("SELECT body FROM memory_turns"):
                unpack_turn(body)
    again = run_peek("record", str(root), "--session", sessions[0], "--edited", EDITED,
                     "--success", "--json", env=env(home))
    assert json.loads(again.stdout)["status"] == "unchanged"


@pytest.mark.slow
def test_kill_9_during_record_keeps_the_verb_index_exact(
        small: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """A record killed at any point rewrites verb documents and the contentless index
    together or not at all: after each kill the index is still the one its verbs make."""
    root, home = copy_home(small, tmp_path)
    for delay in (0.6, 0.9, 1.1, 1.3, 1.6):
        with Peek(root, home) as peek:
            session = peek.ask(f"{QUESTIONS[0]} ({delay})").session
        proc = subprocess.Popen([str(PEEK_BIN), "record", str(root), "--session", session,
                                 "--edited", EDITED, "--success"], env={**os.environ, **env(home)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert revision(home / "peek.db") == (HEAD_REVISION, "ok")
        with Peek(root, home) as peek:
            assert _verb_index(peek.db, peek.corpus_id) == _rebuilt_index(peek.db,
                                                                          peek.corpus_id)[0]
        again = run_peek("record", str(root), "--session", session, "--edited", EDITED,
                         "--success", "--json", env=env(home))
        assert json.loads(again.stdout)["status"] in ("applied", "unchanged"), again.stderr



def test_opening_a_store_again_in_one_process_keeps_the_locks_it_holds(
        small: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """A process holding a connection (a pooled one, an MCP server's) that opens the store
    again must not drop that connection's SQLite locks: reading the file's header through a
    plain handle and closing it did (POSIX locks are per process), so another process took
    itself for the last one and deleted the WAL from under the live connection."""
    from sqlalchemy import text

    root, home = copy_home(small, tmp_path)
    first = open_database(home / "peek.db")
    with first.read() as conn:
        sessions = conn.execute(text("SELECT COUNT(*) FROM agent_sessions")).scalar_one()
    again = open_database(home / "peek.db")
    again.close()
    done = run_peek("status", str(root), env=env(home))
    assert done.returncode == 0, done.stderr
    assert (home / "peek.db-wal").exists()  # the other process knew it was not the last one
    with first.read() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM agent_sessions")).scalar_one() == sessions
    first.close()



def test_two_commands_opening_a_0011_store_at_once_migrate_it_once(
        small: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """Both wait on the migration's file lock; the second finds the store at head."""
    from alembic import command

    root, home = copy_home(small, tmp_path)
    db = open_database(home / "peek.db")
    run_alembic(db, command.downgrade, "0011")
    db.close()
    argv = [str(PEEK_BIN), "memory", "search", str(root), "redirect 7 cookie jar", "--json"]
    procs = [subprocess.Popen(argv, env={**os.environ, **env(home)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert outs[0][0] == outs[1][0] and json.loads(outs[0][0])["results"]
    assert revision(home / "peek.db") == (HEAD_REVISION, "ok")
