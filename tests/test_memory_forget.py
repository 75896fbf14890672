"""Forgetting memory (`peek memory forget`, issue 9 "corrections stick"): a forgotten turn and
everything derived from it leave every search path, the log keeps no text, the rest stays.

Real parts: the `peek` script in subprocesses, SQLite files read as any client would, and a
PostgreSQL server where one is available.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
import zlib
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from helpers import PEEK_BIN, run_alembic, run_peek, write_tree
from test_adversarial import assert_one_line
from test_packed_turns import _rebuilt_index, _verb_index

from peek.db import Database, open_database
from peek.memory import episodes as ep
from peek.memory import fts
from peek.memory.store import load_episodes, load_state, unpack
from peek.memory.unlearn import Sources
from peek.packed import unpack_json
from peek.service import Peek

SECRET = "t13"
SECRET_TEXT = "Zebulon Quartermaine told Ann the vault code is hunter2xyz"
WORDS = ["hunter2xyz", "Zebulon", "Quartermaine"]
TURNS = 200  # 50 windows: two episodes


def chat(path: Path, turns: int, first: int = 0, prefix: str = "s") -> Path:
    """A conversation log, 8 turns to a session; turn 13 says something private."""
    with path.open("w") as out:
        for i in range(first, first + turns):
            text = SECRET_TEXT if i == 13 else (
                f"Ann asked Bo about redirect {i} in session.py and cookie jar {i % 17}")
            out.write(json.dumps({"id": f"t{i}", "speaker": ["Ann", "Bo"][i % 2],
                                  "session": f"{prefix}{i // 8}", "text": text,
                                  "time": f"2026-01-{1 + (i // 8) % 28:02d}"}) + "\n")
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A corpus and a home whose memory holds TURNS turns (built once, copied per test)."""
    base = tmp_path_factory.mktemp("forget")
    root = write_tree(base / "corpus", {"README.md": "notes\n"}).resolve()
    with Peek(root, base / "home") as peek:
        peek.index()
        peek.memory_ingest(chat(base / "chat.jsonl", TURNS))
    return root, base / "home"


@pytest.fixture
def memory(built: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    root, home = built
    mine = tmp_path / "home"
    shutil.copytree(home, mine)
    return root, mine


def peek_cli(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return run_peek(*argv, env={"PEEK_HOME": str(home)})


def forget(root: Path, home: Path, *argv: str) -> dict[str, Any]:
    done = peek_cli(home, "memory", "forget", str(root), *argv, "--json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def searched(root: Path, home: Path, query: str) -> list[dict[str, Any]]:
    done = peek_cli(home, "memory", "search", str(root), query, "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["results"])


def rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, params).fetchall()


def memory_bytes(db: Path, corpus_id: int | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every memory row as stored (of one corpus, or all)."""
    where = "" if corpus_id is None else f" WHERE corpus_id = {int(corpus_id)}"
    return {t: rows(db, f"SELECT * FROM {t}{where} ORDER BY 1, 2") for t in (
        "memory_turns", "memory_windows", "memory_episodes", "memory_nodes", "memory_edges",
        "memory_state", "memory_forgotten")}


# --- what goes -------------------------------------------------------------------------------


def test_a_forgotten_turn_leaves_every_search_path_and_the_file(
        memory: tuple[Path, Path]) -> None:
    root, home = memory
    assert searched(root, home, "hunter2xyz vault code")[0]["turn_ids"] == [SECRET]
    done = forget(root, home, SECRET, "--reason", "private")
    assert done["turns"] == [SECRET] and done["missing"] == [] and done["nodes_removed"] >= 2
    for word in [*WORDS, "vault code"]:
        assert all(SECRET not in h["turn_ids"] for h in searched(root, home, word))
    with Peek(root, home) as peek:
        from peek.memory.query import memory_block

        block = memory_block(peek.db, peek.corpus_id, "What did Zebulon say about the vault?",
                             4000)
        assert block and not any(w.lower() in block.lower() for w in WORDS)
        names = [e.name for e in peek.memory_entities()]
        assert "Zebulon Quartermaine" not in names and {"Ann", "Bo"} <= set(names)
        with peek.db.read() as conn:
            prefixes = [e.prefix for e in load_episodes(conn, peek.corpus_id)]
            state = load_state(conn, peek.corpus_id)
        assert prefixes and not any(w in p for p in prefixes for w in WORDS)
        assert state is not None and state.embedder_state is not None
        fitted = json.loads(zlib.decompress(state.embedder_state))
        assert fitted["n"] == TURNS - 1 == state.fitted_n
        assert not [f for f in fitted["df"] if "hunter2xyz" in f or "zebulon" in f]
        assert state.embedder_state == _fit_of_stored_turns(peek)  # exactly a fresh fit
    db = home / "peek.db"  # closed: the write-ahead log is checkpointed into the file
    raw = db.read_bytes()
    assert not any(w.lower().encode() in raw.lower() for w in WORDS)


def _fit_of_stored_turns(peek: Peek) -> bytes:
    """The hash embedder's state fitted afresh on every stored turn's terms."""
    from peek.memory.embed import HashEmbedder
    from peek.memory.store import load_turns

    with peek.db.read() as conn:
        turns = load_turns(conn, peek.corpus_id)
    fresh = HashEmbedder()
    fresh.fit_terms([t.terms for t in turns])
    return fresh.state()


def test_the_log_keeps_a_digest_never_the_text(memory: tuple[Path, Path]) -> None:
    import hashlib

    root, home = memory
    forget(root, home, SECRET, "--reason", "said by mistake")
    listed = peek_cli(home, "memory", "forgotten", str(root), "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)["forgotten"]
    assert row["turn_id"] == SECRET and row["session"] == "s1" and row["source"] == "conversation"
    assert row["text_sha256"] == hashlib.sha256(SECRET_TEXT.encode()).hexdigest()
    assert row["reason"] == "said by mistake" and abs(row["forgotten_at"] - time.time()) < 600
    stored = rows(home / "peek.db", "SELECT * FROM memory_forgotten")
    assert "hunter2xyz" not in repr(stored)
    text = peek_cli(home, "memory", "forgotten", str(root))
    assert SECRET in text.stdout and row["text_sha256"][:16] in text.stdout


def test_an_entity_only_the_turn_named_goes_and_shared_ones_lose_its_stamp(
        memory: tuple[Path, Path]) -> None:
    root, home = memory
    forget(root, home, SECRET)
    db = home / "peek.db"
    nodes = {r[0]: (r[1], unpack_json(r[2])) for r in rows(db, "SELECT id, kind, data FROM "
                                                                "memory_nodes")}
    assert not [n for _, n in nodes.values() if f'"{SECRET}"' in json.dumps(n)  # no stamp
                or "hunter2xyz" in json.dumps(n)]  # and no text
    assert {"Ann", "Bo"} <= {n["name"] for k, n in nodes.values() if k == "entity"}
    for verb_id, node_id in rows(db, "SELECT verb_id, node_id FROM memory_edges"):
        assert nodes[verb_id][0] == "verb" and node_id in nodes  # no edge to a removed node
    said = [n for k, n in nodes.values() if k == "verb"]
    assert len(said) == TURNS - 1  # one `said` verb per remaining turn


def test_a_session_goes_whole_and_its_windows_with_it(memory: tuple[Path, Path]) -> None:
    root, home = memory
    done = forget(root, home, "--session", "s3", "--reason", "bad import")
    assert done["turns"] == [f"t{i}" for i in range(24, 32)]
    assert done["windows_removed"] == 2 and done["windows_changed"] == 0
    db = home / "peek.db"
    assert rows(db, "SELECT COUNT(*) FROM memory_turns WHERE session = 's3'") == [(0,)]
    assert rows(db, "SELECT COUNT(*) FROM memory_windows WHERE session = 's3'") == [(0,)]
    assert len(rows(db, "SELECT * FROM memory_forgotten WHERE reason = 'bad import'")) == 8
    assert searched(root, home, "redirect 27") == [] or all(
        h["turn_ids"][0] not in done["turns"] for h in searched(root, home, "redirect 27"))


# --- what stays ---------------------------------------------------------------------------------


def _turn_index(db: Database, corpus_id: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any,
                                                                                           ...]]]:
    """(live, rebuilt): each turn document's term counts in the index, and in one built anew
    from the stored turns as `fts.py` makes documents."""
    table = fts.turns_table(corpus_id)
    with db.raw_write() as raw:
        live = raw.execute(f"SELECT doc, term, COUNT(*) FROM {table}_vi GROUP BY doc, term "
                           "ORDER BY 1, 2").fetchall()
        turns = fts._turns(raw, "corpus_id = ? ORDER BY seq", (corpus_id,))
        raw.execute(f'CREATE VIRTUAL TABLE temp.t USING fts5(body, content = \'\', '
                    f'tokenize = "{fts.TOKENIZE}")')
        raw.executemany("INSERT INTO temp.t(rowid, body) VALUES (?, ?)",
                        [(t.row_id, fts.context_doc(turns, i)) for i, t in enumerate(turns)])
        raw.execute("CREATE VIRTUAL TABLE temp.tv USING fts5vocab(temp, t, instance)")
        fresh = raw.execute("SELECT doc, term, COUNT(*) FROM temp.tv GROUP BY doc, term "
                            "ORDER BY 1, 2").fetchall()
        raw.execute("DROP TABLE temp.tv")
        raw.execute("DROP TABLE temp.t")
    return live, fresh


def test_the_indexes_stay_exactly_what_the_remaining_turns_and_verbs_make(
        memory: tuple[Path, Path]) -> None:
    """The contentless indexes delete by the documents as they were indexed: a wrong one
    would leave or corrupt terms, so each equals an index built anew."""
    root, home = memory
    forget(root, home, SECRET, "t14", "t40")  # neighbours, and a turn at a window's start
    forget(root, home, "--session", "s7")
    with Peek(root, home) as peek:
        live, fresh = _turn_index(peek.db, peek.corpus_id)
        assert live == fresh and len({r[0] for r in live}) == TURNS - 11
        assert _verb_index(peek.db, peek.corpus_id) == _rebuilt_index(peek.db,
                                                                       peek.corpus_id)[0]


def _block_of(conn: Any, state: Any, episode: Any) -> str:
    windows = [w for w in ep.load_windows(conn, state.corpus_id) if w.episode == episode.id]
    return ep._episode(conn, state, episode.id, unpack(episode.centroid, state.dim),
                       windows).prefix


def test_untouched_episodes_keep_their_bytes_and_every_block_is_what_is_stored(
        memory: tuple[Path, Path], tmp_path: Path) -> None:
    root, home = memory
    twin = tmp_path / "twin"
    shutil.copytree(home, twin)
    before = {e.id: e.prefix_sha256 for e in Peek(root, home).memory_episodes()}
    assert len(before) == 2
    done = forget(root, home, SECRET)
    [touched] = done["episodes_rebuilt"]
    with Peek(root, home) as peek, peek.db.read() as conn:
        state = load_state(conn, peek.corpus_id)
        episodes = load_episodes(conn, peek.corpus_id)
        assert all(e.prefix == _block_of(conn, state, e) for e in episodes)
        windows = ep.load_windows(conn, peek.corpus_id)
        spans = rows(home / "peek.db", "SELECT window, MIN(seq), MAX(seq) FROM memory_turns "
                                       "GROUP BY window ORDER BY window")
    after = {e.id: e.prefix_sha256 for e in episodes}
    assert {i: s for i, s in after.items() if i != touched} == {
        i: s for i, s in before.items() if i != touched}
    assert after[touched] != before[touched]
    assert [(w.idx, w.first_seq, w.last_seq) for w in windows] == spans
    forget(root, twin, SECRET)  # the same forget elsewhere: the same bytes
    assert {e.id: e.prefix_sha256 for e in Peek(root, twin).memory_episodes()} == after


def test_other_corpora_keep_every_byte(memory: tuple[Path, Path], tmp_path: Path) -> None:
    root, home = memory
    other = write_tree(tmp_path / "other", {"NOTES.md": "other\n"}).resolve()
    with Peek(other, home) as peek:
        peek.index()
        peek.memory_ingest(chat(tmp_path / "other.jsonl", 40))
        other_id = peek.corpus_id
    before = memory_bytes(home / "peek.db", other_id)
    forget(root, home, SECRET, "t100")
    assert memory_bytes(home / "peek.db", other_id) == before
    assert searched(other, home, "hunter2xyz vault")[0]["turn_ids"] == [SECRET]


def test_forgetting_then_remembering_goes_on_as_usual(memory: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    """The last turn forgotten: new turns continue the sequence, windows and episodes."""
    root, home = memory
    forget(root, home, f"t{TURNS - 1}", f"t{TURNS - 2}")
    with Peek(root, home) as peek:
        done = peek.memory_ingest(chat(tmp_path / "more.jsonl", 30, first=TURNS))
        assert done.added == 30
        assert peek.memory_search("redirect 215", k=1).results[0].turn_ids == ["t215"]
        live, fresh = _turn_index(peek.db, peek.corpus_id)
    assert live == fresh


# --- refusals and failures ----------------------------------------------------------------------


def test_an_unknown_or_repeated_forget_is_one_line_and_changes_nothing(
        memory: tuple[Path, Path]) -> None:
    """A repeated forget is an error, not a silent no-op: the id is no longer stored, and the
    message says when it was forgotten (a typo would otherwise pass unnoticed)."""
    root, home = memory
    db = home / "peek.db"
    before = memory_bytes(db)
    assert_one_line(peek_cli(home, "memory", "forget", str(root), "t5", "nope"),
                    "memory has no turn 'nope'")
    assert memory_bytes(db) == before  # t5 was not forgotten either
    forget(root, home, "t5")
    after = memory_bytes(db)
    assert_one_line(peek_cli(home, "memory", "forget", str(root), "t5"),
                    "memory turn 't5' was already forgotten")
    assert_one_line(peek_cli(home, "memory", "forget", str(root), "--session", "zz"),
                    "memory has no turn of session 'zz'")
    assert_one_line(peek_cli(home, "memory", "forget", str(root)), "no turn to forget")
    assert_one_line(peek_cli(home, "memory", "forget", str(root), "t6", "--reason", "x" * 501),
                    "the reason is 501 characters")
    assert memory_bytes(db) == after


def test_a_failure_inside_a_forget_rolls_it_back_whole(memory: tuple[Path, Path]) -> None:
    """A neighbour's damaged body fails the forget after the workspace was already rewritten
    in the transaction: nothing of it is kept."""
    root, home = memory
    db = home / "peek.db"
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE memory_turns SET body = ? WHERE turn_id = 't14'", (b"\x01junk",))
    before = memory_bytes(db)
    assert_one_line(peek_cli(home, "memory", "forget", str(root), SECRET),
                    "memory turn 't14' cannot be read")
    assert memory_bytes(db) == before


@pytest.mark.slow
def test_kill_9_during_a_forget_leaves_the_store_before_or_after(
        memory: tuple[Path, Path], tmp_path: Path) -> None:
    """SIGKILL a `peek memory forget` once its write-ahead log has grown past a size (it is
    writing): each store is the one before or the one after, never a half, and answers."""
    root, home = memory
    after_home = tmp_path / "after"
    shutil.copytree(home, after_home)
    forget(root, after_home, "--session", "s1")
    want = {"before": memory_bytes(home / "peek.db"),
            "after": memory_bytes(after_home / "peek.db")}
    mid_write = 0
    for wal_bytes in (4_200, 20_000, 60_000, 150_000, 400_000):
        trial = tmp_path / f"kill-{wal_bytes}"
        shutil.copytree(home, trial)
        mid_write += _kill_forgetting(root, trial, wal_bytes)
        assert peek_cli(trial, "memory", "show", str(root)).returncode == 0
        found = memory_bytes(trial / "peek.db")
        assert any(_same(found, v) for v in want.values()), wal_bytes
    assert mid_write  # at least one kill landed while the forget was writing


def _kill_forgetting(root: Path, home: Path, wal_bytes: int) -> bool:
    """Start a forget and SIGKILL it once its WAL is past `wal_bytes`; whether it was still
    running then."""
    wal = home / "peek.db-wal"
    proc = subprocess.Popen([str(PEEK_BIN), "memory", "forget", str(root), "--session", "s1"],
                            env={**os.environ, "PEEK_HOME": str(home)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and (wal.stat().st_size if wal.exists() else 0) <= wal_bytes:
        time.sleep(0.0005)
    running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return running


def _same(found: dict[str, Any], want: dict[str, Any]) -> bool:
    """The same rows, but for the clocks (the state's write time, the log's)."""
    def strip(d: dict[str, Any]) -> dict[str, Any]:
        return {**d, "memory_state": [r[:8] + r[9:] for r in d["memory_state"]],
                "memory_forgotten": [r[:7] for r in d["memory_forgotten"]]}
    return strip(found) == strip(want)


def test_a_damaged_turn_can_be_forgotten(memory: tuple[Path, Path]) -> None:
    """A turn that cannot be decoded is forgotten all the same: its row, its document (the
    turn index is rebuilt, since a contentless index deletes by the words it cannot read)
    and what was derived from it; the log has no digest for it."""
    root, home = memory
    db = home / "peek.db"
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE memory_turns SET body = ? WHERE turn_id = ?", (b"\x01junk", SECRET))
    assert_one_line(peek_cli(home, "memory", "search", str(root), "redirect 12"),
                    f"memory turn '{SECRET}' cannot be read")
    done = forget(root, home, SECRET, "--reason", "damaged")
    assert done["damaged"] == [SECRET] and done["turns"] == [SECRET]
    assert searched(root, home, "redirect 12")[0]["turn_ids"] == ["t12"]
    assert rows(db, "SELECT text_sha256, reason FROM memory_forgotten") == [(None, "damaged")]
    with Peek(root, home) as peek:
        with peek.db.read() as conn:
            state = load_state(conn, peek.corpus_id)
        assert state is not None and state.embedder_state == _fit_of_stored_turns(peek)
        live, fresh = _turn_index(peek.db, peek.corpus_id)
        assert live == fresh
        assert "Zebulon Quartermaine" not in {e.name for e in peek.memory_entities()}


# --- the front doors -----------------------------------------------------------------------------


def test_the_sdk_forgets_by_id_and_session_and_lists_the_log(memory: tuple[Path, Path]) -> None:
    import peek as sdk

    root, home = memory
    with Peek(root, home) as peek:
        done = peek.memory_forget([SECRET], sessions=["s4"], reason="tidy")
        assert isinstance(done, sdk.Forgotten)
        assert done.turns == [SECRET, *(f"t{i}" for i in range(32, 40))]
        log = peek.memory_forgotten()
        assert [f.turn_id for f in log] == done.turns
        assert all(isinstance(f, sdk.ForgottenTurn) and f.reason == "tidy" for f in log)
        with pytest.raises(sdk.QueryError, match="already forgotten"):
            peek.memory_forget(SECRET)
        from peek.memory.forget import forget_turns

        with peek.db.write() as conn:  # a retracting caller skips what is already gone
            again = forget_turns(conn, peek.corpus_id, [SECRET, "t0"], "retract",
                                 missing_ok=True)
        assert again.turns == ["t0"] and again.missing == [SECRET]


def test_search_and_show_name_turn_ids_to_forget(memory: tuple[Path, Path]) -> None:
    root, home = memory
    plain = peek_cli(home, "memory", "search", str(root), "vault code")
    assert f"[{SECRET}]" in plain.stdout  # the id to pass to `peek memory forget`
    forget(root, home, SECRET)
    shown = peek_cli(home, "memory", "show", str(root), "--json")
    assert json.loads(shown.stdout)["forgotten"] == 1
    assert "1 turns forgotten" in peek_cli(home, "memory", "show", str(root)).stdout


def test_llm_chunk_sources_go_with_any_turn_of_their_session() -> None:
    """The LLM Operator stamps `SESSION#N` (a chunk of a whole session): forgetting one turn
    of that session takes them; a stored turn whose id only looks like a chunk stays."""
    sources = Sources(["t3"], ["s0"], kept_ids={"s0#9"})
    assert sources.gone("t3") and sources.gone("s0#0") and sources.gone("s0#12")
    assert not sources.gone("s0#9") and not sources.gone("s1#0") and not sources.gone("t30")
    assert sources.needles().search('{"source":"s0#2"}')


def test_a_recorded_session_goes_and_the_files_other_sessions_touched_stay(
        tmp_path: Path) -> None:
    """A `peek record`ed session is two turns of session `session:ID` (what was asked and
    answered, and its outcome); forgetting the session takes its words out of the workspace,
    while files that other sessions read keep their entities, restamped."""
    from test_store_attacks import EDITED, QUESTIONS, learned

    root, home = learned(tmp_path, 8)
    with Peek(root, home) as peek, peek.db.read() as conn:
        sessions = [r[0] for r in conn.exec_driver_sql(
            "SELECT DISTINCT session FROM memory_turns WHERE source = 'code' ORDER BY seq")]
    done = forget(root, home, "--session", sessions[0], "--reason", "wrong answer")
    assert done["turns"] == [sessions[0], f"{sessions[0]}:outcome"]
    db = home / "peek.db"
    texts = [json.dumps(unpack_json(r[0])) for r in rows(db, "SELECT data FROM memory_nodes")]
    assert not [t for t in texts if QUESTIONS[0] in t or f'"{sessions[0]}"' in t]
    assert [t for t in texts if QUESTIONS[1] in t]  # the other sessions' words stay
    files = [json.loads(t) for t in texts if f'"name": "{EDITED}"' in t]
    assert files and all(f["source"] != sessions[0] for f in files)
    with Peek(root, home) as peek:
        assert _verb_index(peek.db, peek.corpus_id) == _rebuilt_index(peek.db,
                                                                       peek.corpus_id)[0]
        live, fresh = _turn_index(peek.db, peek.corpus_id)
        assert live == fresh


def test_model_extracted_evidence_of_a_session_goes_with_any_of_its_turns(
        tmp_path: Path) -> None:
    """Through `remember` with a chunk maker as `ingest --model` builds one: the LLM
    Operator's chunks `SESSION#N` cover a whole session, so forgetting one of its turns takes
    what they alone said; the session's other turns stay."""
    from peek.memory.models import OperatorOutput
    from peek.memory.operator import Chunk, workspace_from_output
    from peek.memory.pipeline import NewTurn, remember

    root = write_tree(tmp_path / "corpus", {"README.md": "notes\n"}).resolve()
    extracted = OperatorOutput.model_validate({
        "entity_nodes": [{"id": "e1", "name": "Obscura Lantern", "kind": "object",
                          "roles": [{"role": "heirloom", "states": ["lost"]}]}],
        "verb_phrase_nodes": [{"id": "v1", "phrase": "lost", "questions": [
            {"text": "What was lost?", "answers": ["e1"]},
            {"text": "Where?", "answers": ["TEXT:in the attic"]}]}]})

    def maker(records: list[Any]) -> list[Chunk]:
        ws = workspace_from_output(extracted, None, "s0#0", records[0].seq, None)
        return [Chunk("s0#0", records[0].seq, "", ws)]

    turns = [NewTurn(f"t{i}", "Ann", f"a line about {fruit} in the attic", None, "s0")
             for i, fruit in enumerate(["apples", "pears", "plums", "figs"])]
    with Peek(root, tmp_path / "home") as peek:
        peek.index()
        with peek.db.write() as conn:
            remember(conn, peek.corpus_id, turns, chunks=maker)
        assert "Obscura Lantern" in {e.name for e in peek.memory_entities()}
        peek.memory_forget(["t2"])
        assert "Obscura Lantern" not in {e.name for e in peek.memory_entities()}
        assert [h.turn_ids for h in peek.memory_search("pears", k=1).results] == [["t1"]]
    texts = [json.dumps(unpack_json(r[0])) for r in rows(tmp_path / "home" / "peek.db",
                                                          "SELECT data FROM memory_nodes")]
    assert not [t for t in texts if "s0#0" in t or "in the attic" in t]


def test_a_damaged_verb_document_is_rebuilt_by_a_forget(memory: tuple[Path, Path]) -> None:
    """A deleted verb's saved document is what deletes it from the contentless index: when it
    cannot be read, the forget rebuilds the verb index from the verbs left."""
    root, home = memory
    with closing(sqlite3.connect(home / "peek.db")) as conn, conn:
        conn.execute("UPDATE memory_nodes SET doc = ? WHERE doc IS NOT NULL",
                     (b"\x01" + bytes(range(40)),))
    forget(root, home, SECRET)
    with Peek(root, home) as peek:
        assert _verb_index(peek.db, peek.corpus_id) == _rebuilt_index(peek.db,
                                                                       peek.corpus_id)[0]


def _moved(source: str, seq: int, day: str) -> Any:
    """A chunk: Ann moved the box (roles stamped by `source`), on `day`."""
    from peek.memory.models import Entity, Question, Role, SpaceTimeNode, VerbPhrase, Workspace
    from peek.memory.operator import Chunk

    def entity(local: str, name: str, kind: str, role: str) -> Entity:
        return Entity(id=local, name=name, kind=kind, source=source, seq=seq,
                      roles=[Role(role=role, source=source, seq=seq)])

    ask = [("Who moved it?", "e1"), ("What was moved?", "e2"), ("When?", "t0")]
    verb = VerbPhrase(id="v0", phrase="moved", source=source, seq=seq, questions=[
        Question(id=f"v0q{i}", text=t, answers=[a], source=source) for i, (t, a) in
        enumerate(ask)])
    when = SpaceTimeNode(id="t0", kind="time", current_name=day, name_history={source: day},
                         source=source, seq=seq, entity_ids=["e1", "e2"])
    return Chunk(source, seq, "", Workspace(
        entities=[entity("e1", "Ann", "person", "mover"), entity("e2", "Blue Box", "object",
                                                                   "moved thing")],
        verb_phrases=[verb], space_time=[when]))


def test_a_verb_two_turns_said_keeps_the_other_turn_and_loses_the_forgotten_ones_time(
        tmp_path: Path) -> None:
    """Two turns say Ann moved the box, on different days: one verb, its questions stamped
    by the first turn, plus the second's day. Forgetting the first keeps the verb (the second
    said it), restamped, without the first's day, whose time node goes."""
    from peek.memory.models import SpaceTimeNode, VerbPhrase
    from peek.memory.pipeline import NewTurn, remember
    from peek.memory.store import load_nodes

    root = write_tree(tmp_path / "corpus", {"README.md": "notes\n"}).resolve()
    days = {"t0": "Monday", "t1": "Friday"}
    with Peek(root, tmp_path / "home") as peek:
        peek.index()
        for turn, day in days.items():
            with peek.db.write() as conn:
                remember(conn, peek.corpus_id, [NewTurn(turn, "Ann", f"moved it {day}", None,
                                                        turn)],
                         chunks=lambda records, t=turn, d=day: [_moved(t, records[0].seq, d)])
        peek.memory_forget(["t0"])
        with peek.db.read() as conn:
            nodes = load_nodes(conn, peek.corpus_id)
    [verb] = [n for n in nodes if isinstance(n, VerbPhrase)]
    times = {n.id: n.current_name for n in nodes if isinstance(n, SpaceTimeNode)}
    assert verb.source == "t1" and {q.source for q in verb.questions} == {"t1"}
    assert sorted(q.text for q in verb.questions) == ["What was moved?", "When?",
                                                      "Who moved it?"]
    assert list(times.values()) == ["Friday"]
    assert [a for q in verb.questions if q.text == "When?" for a in q.answers] == list(times)


# --- PostgreSQL ---------------------------------------------------------------------------------


def _forget_on(root: Path, home: Path) -> tuple[list[Any], list[str], list[str]]:
    """Ingest, forget a turn and a session; what search, episodes and entities then say."""
    with Peek(root, home) as peek:
        peek.index()
        peek.memory_ingest(chat(home.parent / f"{home.name}.jsonl", 120))
        peek.memory_forget([SECRET, "t40"], sessions=["s9"], reason="pg")
        found = [(h.turn_ids, round(h.score, 4))
                 for h in peek.memory_search("Zebulon vault redirect 41", k=10).results]
        shas = [e.prefix_sha256 for e in peek.memory_episodes()]
        names = sorted(e.name for e in peek.memory_entities())
        assert [f.turn_id for f in peek.memory_forgotten()][:2] == [SECRET, "t40"]
    return found, shas, names


@pytest.mark.postgres
def test_forgetting_answers_on_postgres_as_on_sqlite(
        make_corpus: Any, tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_corpus({"README.md": "notes\n"})
    lite = _forget_on(root, tmp_path / "lite")
    monkeypatch.setenv("PEEK_DATABASE_URL", pg_url)
    pg = _forget_on(root, tmp_path / "pg")
    assert pg == lite
    assert lite[0] and all(SECRET not in ids for ids, _ in lite[0])
    assert "Zebulon Quartermaine" not in lite[2]


# --- migration 0017 -----------------------------------------------------------------------------


def _round_trip(root: Path, home: Path, target: str | Path) -> None:
    """Forget, downgrade to 0016 (the log table goes, the turns stay forgotten), upgrade."""
    from alembic import command
    from sqlalchemy import inspect

    with Peek(root, home) as peek:
        peek.index()
        peek.memory_ingest(chat(home.parent / "round.jsonl", 24))
        peek.memory_forget([SECRET], reason="before the downgrade")
    db = open_database(target)
    run_alembic(db, command.downgrade, "0016")
    assert "memory_forgotten" not in inspect(db.engine).get_table_names()
    db.close()
    open_database(target).close()  # opening migrates to the head revision
    with Peek(root, home) as peek:
        assert peek.memory_forgotten() == []
        assert all(h.turn_ids != [SECRET] for h in peek.memory_search("vault code").results)
        assert peek.memory_forget(["t14"], reason="after").turns == ["t14"]
        assert [f.reason for f in peek.memory_forgotten()] == ["after"]


def test_migration_0017_round_trips_on_sqlite(make_corpus: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    _round_trip(make_corpus({"README.md": "notes\n"}), home, home / "peek.db")


@pytest.mark.postgres
def test_migration_0017_round_trips_on_postgres(make_corpus: Any, tmp_path: Path, pg_url: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEEK_DATABASE_URL", pg_url)
    _round_trip(make_corpus({"README.md": "notes\n"}), tmp_path / "home", pg_url)
