"""Issue 9 acceptance audit: each scope item through a front door a user has (the `peek`
script, the official MCP client over stdio, the SDK), on real SQLite stores.

What other files already cover is not repeated here (see the audit report); these are the
checks that were missing: whole-store dumps instead of row counts, the store file's bytes and
SQLite's data_version for reads, the CLI path of corrections, evolve steps at every door, and
bad inputs on the learning paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import CLICK as CLICK_CORPUS
from helpers import run_peek, write_tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import ClientSession, StdioServerParameters, stdio_client

from peek.contextmap.evictor import Evictor
from peek.contextmap.model import Entry
from peek.contextmap.render import render_entries
from peek.contextmap.tokens import exact_tokens
from peek.service import Peek

CLICK = {**CLICK_CORPUS, "src/click/shell.py": "def complete_words(prefix):\n    return [prefix]\n"}
QUESTION = "where are environment variables read for options?"
CORE, TESTING, UTILS = "src/click/core.py", "src/click/testing.py", "src/click/utils.py"
REASONS = ("learned: similar request", "learned: past requests", "map cr-", "graph", "search",
           "named in the question", "defines ")


# ------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The issue's click example as a small real corpus, indexed once through the CLI."""
    base = tmp_path_factory.mktemp("click")
    root = write_tree(base / "click", CLICK)
    done = run_peek("index", str(root), env={"PEEK_HOME": str(base / "home")})
    assert done.returncode == 0, done.stderr
    return root, base / "home"


@pytest.fixture
def click(indexed: tuple[Path, Path], home: Path) -> Iterator[Path]:
    """The indexed corpus with a store of this test's own (a copy of the indexed one); the
    corpus's files are put back afterwards."""
    root, template = indexed
    shutil.copytree(template, home)
    yield root
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and rel not in CLICK:
            path.unlink()
    write_tree(root, dict(CLICK))


def store(home: Path) -> Path:
    return home / "peek.db"


def dump(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every real table (FTS shadow tables included), sorted: a logical dump."""
    with contextlib.closing(sqlite3.connect(f"file:{store(home)}?mode=ro", uri=True)) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE "
            "'CREATE VIRTUAL%' ORDER BY name")]  # an FTS index is dumped as its shadow tables
        return {n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr)
                for n in names}


def learning_state(home: Path) -> dict[str, Any]:
    """What teaches: map entries with their tag counts, map state, ranker, outcomes, memory."""
    full = dump(home)
    keep = ("map_entries", "map_state", "ranker_state", "session_outcomes", "memory_turns",
            "memory_nodes")
    return {t: full[t] for t in keep}


def files_of(home: Path) -> dict[str, str]:
    """sha256 of the store file and of its write-ahead log where it holds frames (an empty
    -wal is left by a reader that outlived the last writer: nothing was written), mtime."""
    out = {}
    for suffix in ("", "-wal"):
        path = Path(f"{store(home)}{suffix}")
        if path.exists() and path.stat().st_size:
            out[suffix or "db"] = hashlib.sha256(path.read_bytes()).hexdigest()
    out["mtime"] = str(store(home).stat().st_mtime_ns)
    return out


@contextlib.contextmanager
def watching(home: Path) -> Iterator[sqlite3.Connection]:
    """A connection held open across commands: its `PRAGMA data_version` changes only when
    another connection commits, so an unchanged value proves nothing was written."""
    conn = sqlite3.connect(f"file:{store(home)}?mode=ro", uri=True)
    try:
        yield conn
    finally:
        conn.close()


def data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def ask_json(root: Path, question: str, *extra: str) -> dict[str, Any]:
    done = run_peek("ask", str(root), question, "--json", *extra)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def record(root: Path, session: str, *edited: str, extra: tuple[str, ...] = ("--success",)
           ) -> dict[str, Any]:
    done = run_peek("record", str(root), "--session", session, "--edited", *edited, *extra,
                    "--json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def exported(root: Path) -> dict[str, Any]:
    """The map with every counter and anchor (`peek map export`, read in process)."""
    with Peek(root) as peek:
        return peek.map_export()


def entries(root: Path) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in exported(root)["entries"]}


def one_line_error(done: Any, fragment: str) -> None:
    """A refusal: exit 2, exactly one `peek: error:` line naming the problem, no traceback."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("peek: error: "), done.stderr
    assert fragment in lines[0], lines[0]


def teach(root: Path, edited: str, questions: list[str]) -> None:
    """Sessions whose outcome was `edited` (through the SDK: setup, not the door tested)."""
    with Peek(root) as peek:
        for question in questions:
            peek.record(session=peek.ask(question).session, edited=[edited], success=True)


def first_lines(answer: str) -> list[str]:
    """The numbered location lines of an offline answer."""
    return [ln for ln in answer.splitlines() if ln[:1].isdigit() and ". " in ln[:4]]


# ------------------------------------------------------------------ 1. feedback


def test_offline_asks_without_a_record_teach_nothing(click: Path, home: Path) -> None:
    teach(click, TESTING, [QUESTION])  # something learned, so there is state to keep
    before = learning_state(home)
    for question in (QUESTION, "which code reads environment variables for options?",
                     "where is the isolation of the runner?"):
        ask_json(click, question)
    assert learning_state(home) == before  # no tag, no entry, no ranker step, no outcome


def test_an_outcome_tags_helpful_only_entries_whose_anchors_hold_the_edit(
        click: Path) -> None:
    teach(click, TESTING, ["where is the isolation of the runner?"])
    (entry_id,) = [i for i, e in entries(click).items() if TESTING in e["text"]]
    asked = ask_json(click, "runner isolation is broken")
    assert f"map {entry_id}" in asked["answer"]  # the answer names the entry as its reason
    report = record(click, asked["session"], UTILS)  # but the work was elsewhere
    assert report["tags"].get(entry_id) != "helpful"
    assert entries(click)[entry_id]["helpful"] == 0
    with Peek(click) as peek:
        right = peek.ask("runner isolation fails")
        report = peek.record(session=right.session, edited=[TESTING], success=True)
    assert report.tags[entry_id] == "helpful"  # its anchors held the edit: evidence


def script(tmp_path: Path, answer: str, json_replies: list[Any]) -> Path:
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"turns": [
        {"content": "", "tool_calls": [{"id": "c1", "name": "search",
                                        "arguments": {"query": "environment variables"}}]},
        {"content": answer}], "json": json_replies}))
    return path


def test_a_model_ask_is_a_hypothesis_that_tags_nothing_helpful(click: Path, home: Path,
                                                                tmp_path: Path) -> None:
    teach(click, CORE, [QUESTION])
    (entry_id,) = [i for i, e in entries(click).items() if CORE in e["text"]]
    before = learning_state(home)
    helpful = entries(click)[entry_id]["helpful"]
    model = script(tmp_path, f"Options read them in src/click/core.py:11-13 ({entry_id}).", [
        {"diagnosis": "used the map", "tags": [{"id": entry_id, "tag": "helpful"}],
         "candidates": [{"section": "cr", "text": "runner env: src/click/testing.py",
                         "anchors": [{"path": TESTING, "start_line": 1, "end_line": 9}]},
                        {"section": "pf", "text": "the runner only sets variables"}]},
        {"edits": [{"op": "ADD", "section": "cr", "text": "runner env: src/click/testing.py",
                    "candidate": 0, "reason": "x"},
                   {"op": "ADD", "section": "pf", "text": "the runner only sets variables",
                    "candidate": 1, "reason": "x"}]}])
    asked = ask_json(click, QUESTION, "--model", f"scripted:{model}")
    assert asked["citations"][0]["path"] == CORE
    after = learning_state(home)
    assert after["ranker_state"] == before["ranker_state"]
    assert after["session_outcomes"] == before["session_outcomes"]
    now = entries(click)
    assert now[entry_id]["helpful"] == helpful  # the model called it helpful: not evidence
    assert all(not e["anchors"] for i, e in now.items() if i not in entries_at(before))
    assert len(after["memory_turns"]) > len(before["memory_turns"])  # remembered as asked


def entries_at(state: dict[str, Any]) -> set[str]:
    return {row[1] for row in state["map_entries"]}


def test_a_record_without_an_outcome_is_a_hypothesis_then_the_outcome_teaches_once(
        click: Path, home: Path) -> None:
    asked = ask_json(click, QUESTION)
    done = run_peek("record", str(click), "--session", asked["session"], "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tags"] == {}
    state = learning_state(home)
    assert state["session_outcomes"] == [] and state["ranker_state"] == []
    report = record(click, asked["session"], CORE)
    assert report["status"] == "applied"
    again = learning_state(home)
    assert len(again["session_outcomes"]) == 1 and len(again["ranker_state"]) == 1


# ------------------------------------------------------------------ 2. corrections stick


WRONG = ["where are environment variables read for options?",
         "envvar for an option is ignored", "read options from environment variables"]


def test_a_cli_edit_rederives_anchors_and_a_pinned_edit_beats_what_was_learned(
        click: Path) -> None:
    teach(click, TESTING, WRONG)  # three sessions that ended in the runner: learned, wrongly
    learned = ask_json(click, "which code reads environment variables for options?")
    assert learned["citations"][0]["path"] == TESTING
    entry_id = next(i for i, e in entries(click).items() if TESTING in e["text"])
    done = run_peek("map", "edit", str(click), entry_id, "environment variables for options: "
                    "src/click/core.py:11-13 (Option.resolve_envvar_value)")
    assert done.returncode == 0, done.stderr
    edited = entries(click)[entry_id]
    assert [(a["path"], a["start_line"], a["end_line"]) for a in edited["anchors"]] == [
        (CORE, 11, 13)]
    assert edited["harmful"] == 0
    assert run_peek("map", "pin", str(click), entry_id).returncode == 0
    after = ask_json(click, "which code reads environment variables for options?")
    assert after["citations"][0]["path"] == CORE
    assert f"map {entry_id}" in first_lines(after["answer"])[0]
    teach(click, TESTING, ["environment variables for options again"])  # more learning
    still = ask_json(click, "which code reads environment variables for options?")
    assert still["citations"][0]["path"] == CORE
    assert entries(click)[entry_id]["text"].startswith("environment variables for options: ")


def test_an_edit_naming_only_a_symbol_anchors_where_the_symbol_is_defined(click: Path) -> None:
    teach(click, TESTING, WRONG[:1])
    entry_id = next(i for i, e in entries(click).items() if TESTING in e["text"])
    done = run_peek("map", "edit", str(click), entry_id,
                    "option values from environment variables: Option.resolve_envvar_value")
    assert done.returncode == 0, done.stderr
    anchors = entries(click)[entry_id]["anchors"]
    assert [(a["path"], a["start_line"], a["end_line"]) for a in anchors] == [(CORE, 11, 13)]
    nxt = ask_json(click, "option values from environment variables", "--no-learn")
    assert nxt["citations"][0]["path"] == CORE


def test_forget_survives_later_asks_and_unrelated_outcomes(click: Path) -> None:
    teach(click, TESTING, WRONG[:1])
    forgotten = {i: e["text"] for i, e in entries(click).items() if TESTING in e["text"]}
    assert forgotten
    for entry_id in forgotten:
        assert run_peek("map", "forget", str(click), entry_id).returncode == 0
    for _ in range(3):
        ask_json(click, QUESTION)
    teach(click, UTILS, ["echo prints a message", "how is a message printed?"])
    now = entries(click)
    assert not set(forgotten) & set(now)
    assert not any(TESTING in e["text"] for e in now.values())


# ------------------------------------------------------------------ 3. one session, one update


def test_recording_a_session_twice_through_the_cli_changes_no_row(click: Path,
                                                                   home: Path) -> None:
    session = ask_json(click, QUESTION)["session"]
    first = record(click, session, CORE)
    before = dump(home)
    assert before["ranker_state"] and before["session_outcomes"]
    again = record(click, session, CORE)
    assert (first["status"], again["status"]) == ("applied", "unchanged")
    assert dump(home) == before  # ranker updates, tag counts, memory rows: all as they were
    found = run_peek("memory", "search", str(click), "environment variables options", "--json")
    assert found.returncode == 0, found.stderr
    texts = " ".join(r["text"] for r in json.loads(found.stdout)["results"])
    assert "Edited: src/click/core.py; succeeded" in texts


BAD_LEARNING_INPUTS = [
    (["record", "{root}", "--session", "nosuch", "--edited", CORE, "--success"],
     "no session 'nosuch'"),
    (["record", "{root}", "--session", "{session}", "--edited", CORE, "../outside.py",
      "--success"], "../outside.py"),
    (["record", "{root}", "--session", "{session}", "--edited", "/etc/hostname", "--success"],
     "outside the corpus"),
    (["record", "{root}", "--session", "{session}", "--edited", CORE, "--success",
      "--failure"], "--success"),
    (["record", "{root}", "--session", "{session}", "--edited", CORE, "--evolve-steps", "-1"],
     "-1 is not in the range"),
    (["ask", "{root}", QUESTION, "--evolve-steps", "-1"], "-1 is not in the range"),
    (["eval", "{root}/q.jsonl", "--corpus", "{root}", "--evolve-steps", "-1"],
     "-1 is not in the range"),
    (["map", "edit", "{root}", "cr-09999", "text"], "no entry 'cr-09999'"),
    (["map", "edit", "{root}", "cr-00001", "   "], "cannot be empty"),
    (["map", "forget", "{root}", "cr-09999"], "no entry 'cr-09999'"),
    (["map", "pin", "{root}", "cr-09999"], "no entry 'cr-09999'"),
]


@pytest.mark.slow
def test_bad_inputs_on_the_learning_paths_are_one_line_and_write_nothing(
        click: Path, home: Path, tmp_path: Path) -> None:
    session = ask_json(click, QUESTION)["session"]
    (click.parent / "outside.py").write_text("x = 1\n")
    before, bytes_before = dump(home), files_of(home)
    for argv, fragment in BAD_LEARNING_INPUTS:
        done = run_peek(*[a.format(root=click, session=session) for a in argv])
        one_line_error(done, fragment)
    assert dump(home) == before and files_of(home) == bytes_before


# ------------------------------------------------------------------ 4. explainable ranking


def test_every_cited_file_says_why_in_text_and_json(click: Path) -> None:
    teach(click, CORE, [QUESTION])
    text = run_peek("ask", str(click), "how do options read environment variables?",
                    "--no-learn")
    assert text.returncode == 0, text.stderr
    as_json = ask_json(click, "how do options read environment variables?", "--no-learn")
    for answer, cited in ((text.stdout, None), (as_json["answer"], as_json["citations"])):
        lines = first_lines(answer)
        assert lines
        for line in lines:
            why = line[line.index(" (") + 2:-1].split("; ")
            assert all(any(w.startswith(r) for r in REASONS) for w in why), line
        if cited is not None:
            assert [c["path"] for c in cited] == [ln.split()[1].split(":")[0] for ln in lines]
    assert "learned: similar request" in first_lines(as_json["answer"])[0]


def test_a_file_only_past_requests_point_to_says_it_was_learned(click: Path) -> None:
    """A file that neither search, the graph, the map nor the ten most similar requests put
    there, only the requests that edited it (found on a real history: flask's replay)."""
    peek = Peek(click)
    peek.map_configure(evolve_steps=0)  # no map entry: only the ranker's evidence is left
    for question, edited in [("parsing", "src/click/shell.py"),
                             *((f"alpha parsing beta{i}", CORE) for i in range(11))]:
        peek.record(session=peek.ask(question).session, edited=[edited], success=True)
    answer = peek.ask("alpha parsing", learn=False).answer
    (line,) = [ln for ln in first_lines(answer) if "src/click/shell.py" in ln]
    assert line.endswith("(learned: edited for requests like this)")
    peek.close()


# ------------------------------------------------------------------ 5. evolve steps


@pytest.mark.slow
def test_evolve_steps_on_ask_and_record_freeze_the_map_after_m_updates(click: Path) -> None:
    asked = ask_json(click, QUESTION, "--evolve-steps", "2")
    state = exported(click)
    assert (state["evolve_steps"], state["updates"], state["frozen"]) == (2, 0, False)
    with Peek(click) as peek:
        versions = [peek.record(session=asked["session"], edited=[CORE], success=True).version]
        versions.append(peek.record(session=peek.ask("echo prints a message").session,
                                    edited=[UTILS], success=True).version)
        frozen_ask = peek.ask("the option decorator").session
    late = record(click, frozen_ask, "src/click/decorators.py")
    versions.append(late["version"])
    assert late["status"] == "frozen"
    state = exported(click)
    assert (state["updates"], state["frozen"]) == (2, True)
    assert versions[1] == versions[2] == state["version"]  # frozen: the version stands still
    done = run_peek("record", str(click), "--session", ask_json(click, "echo again")["session"],
                    "--edited", UTILS, "--success", "--evolve-steps", "3", "--json")
    assert json.loads(done.stdout)["status"] == "applied"  # a larger m thaws it for one more
    state = exported(click)
    assert (state["evolve_steps"], state["updates"], state["frozen"]) == (3, 3, True)


def test_evolve_steps_in_the_sdk(click: Path) -> None:
    peek = Peek(click)
    peek.ask(QUESTION, evolve_steps=1)
    first = peek.record(session=peek.ask(QUESTION).session, edited=[CORE], success=True)
    second = peek.record(session=peek.ask("echo prints").session, edited=[UTILS], success=True)
    assert (first.status, second.status) == ("applied", "frozen")
    assert peek.map().version == second.version == first.version
    third = peek.record(session=peek.ask("echo again").session, edited=[UTILS], success=True,
                        evolve_steps=None)  # None: evolve again
    assert third.status == "applied" and peek.map().version > first.version
    peek.close()


def test_eval_reports_the_learned_map_frozen_by_evolve_steps(click: Path, home: Path,
                                                              tmp_path: Path) -> None:
    items = [{"question": QUESTION, "gold_files": [CORE]},
             {"question": "echo prints a message", "gold_files": [UTILS]},
             {"question": "the option decorator", "gold_files": ["src/click/decorators.py"]},
             {"question": "options and environment variables", "gold_files": [CORE]}]
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("".join(json.dumps(i) + "\n" for i in items))
    before = files_of(home)
    done = run_peek("eval", str(qfile), "--corpus", str(click), "--learn", "3",
                    "--evolve-steps", "1", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["map"]["updates"] == 1 and report["map"]["frozen"] is True
    unfrozen = json.loads(run_peek("eval", str(qfile), "--corpus", str(click), "--learn", "3",
                                   "--json").stdout)
    assert unfrozen["map"]["updates"] == 3 and unfrozen["map"]["frozen"] is False
    assert unfrozen["map"]["version"] > report["map"]["version"]
    assert files_of(home) == before  # 6. eval never changes the user's store


# ------------------------------------------------------------------ 6. honest A/B, 7. pure reads


def test_learning_off_writes_nothing_on_any_door(click: Path, home: Path,
                                                 tmp_path: Path) -> None:
    teach(click, CORE, [QUESTION])
    (click / CORE).write_text(CLICK[CORE] + "\n# changed since the index\n")  # stale on read
    model = script(tmp_path, "Options read them in src/click/core.py:11-13.", [])
    before, bytes_before = dump(home), files_of(home)
    with watching(home) as conn:
        seen = data_version(conn)
        peek = Peek(click)
        assert peek.ask(QUESTION, learn=False).citations[0].path == CORE
        from peek.agent.scripted import ScriptedModel

        scripted = ScriptedModel.from_file(model)
        assert peek.ask(QUESTION, scripted, learn=False, evolve_steps=1).citations
        peek.close()
        for argv in (["ask", str(click), QUESTION, "--no-learn"],
                     ["ask", str(click), QUESTION, "--no-learn", "--evolve-steps", "1"],
                     ["ask", str(click), QUESTION, "--no-learn", "--model", f"scripted:{model}"]):
            done = run_peek(*argv)
            assert done.returncode == 0, done.stderr
        assert data_version(conn) == seen
    assert dump(home) == before and files_of(home) == bytes_before


def test_read_paths_leave_the_store_file_untouched_while_the_corpus_changed(
        click: Path, home: Path) -> None:
    teach(click, CORE, [QUESTION])
    (click / CORE).write_text(CLICK[CORE] + "\n# changed since the index\n")
    (click / "src/click/new.py").write_text("def fresh():\n    pass\n")
    bytes_before, before = files_of(home), dump(home)
    with watching(home) as conn:
        seen = data_version(conn)
        shown = run_peek("map", str(click), "--json")
        assert shown.returncode == 0, shown.stderr
        assert any(e["stale"] for e in json.loads(shown.stdout)["entries"])  # computed on read
        status = run_peek("status", str(click), "--json")
        assert status.returncode == 0, status.stderr
        assert CORE in json.loads(status.stdout)["changed"]
        for argv in (["map", str(click)], ["status", str(click)],
                     ["search", str(click), "environment", "--json"],
                     ["memory", "search", str(click), "environment"]):
            done = run_peek(*argv)
            assert done.returncode == 0, (argv, done.stderr)
        peek = Peek(click)
        assert any(e.outdated for e, _ in peek.map().entries)
        peek.map(budget=30)
        peek.status()
        peek.search("environment")
        peek.close()
        assert data_version(conn) == seen
    assert files_of(home) == bytes_before and dump(home) == before


async def _mcp_session(home: Path, root: Path) -> dict[str, Any]:
    params = StdioServerParameters(command=sys.executable, args=[
        "-m", "peek.cli", "mcp", "--home", str(home), "--root", str(root.parent)])
    out: dict[str, Any] = {}

    async def call(label: str, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        result = await session.call_tool(tool, {"corpus": str(root), **args})
        assert not result.is_error, result.content
        out[label] = dict(result.structured_content or {})
        return out[label]

    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        with watching(home) as conn:
            seen = data_version(conn)
            await call("map", "peek_map", {})
            await call("map_budget", "peek_map", {"budget": 30})
            await call("search", "peek_search", {"query": "environment"})
            await call("status", "peek_status", {})
            out["pure"] = data_version(conn) == seen
        out["before_hypothesis"] = learning_state(home)
        await call("hypothesis", "peek_record", {"question": QUESTION, "files_read": [CORE]})
        out["after_hypothesis"] = learning_state(home)
        await call("evidence", "peek_record", {"question": QUESTION, "files_edited": [CORE],
                                               "success": True, "session": "host-1"})
        out["after_evidence"] = learning_state(home)
        await call("again", "peek_record", {"question": QUESTION, "files_edited": [CORE],
                                            "success": True, "session": "host-1"})
        out["after_again"] = learning_state(home)
        await call("frozen_map", "peek_map", {"evolve_steps": 3})  # 2 updates so far
        for n in range(2):
            await call(f"late{n}", "peek_record", {
                "question": f"echo prints a message {n}", "files_edited": [UTILS],
                "success": True, "session": f"host-late-{n}"})
        out["end"] = exported_state(home)
    return out


def exported_state(home: Path) -> tuple[Any, ...]:
    with contextlib.closing(sqlite3.connect(f"file:{store(home)}?mode=ro", uri=True)) as conn:
        return tuple(conn.execute(
            "SELECT version, updates, evolve_steps, frozen FROM map_state").fetchone())


def test_mcp_peek_map_is_pure_records_teach_as_documented_and_evolve_steps_freeze(
        click: Path, home: Path) -> None:
    (click / CORE).write_text(CLICK[CORE] + "\n# changed since the index\n")
    out = asyncio.run(_mcp_session(home, click))
    assert out["pure"]
    assert out["map_budget"]["tokens"] <= 30
    hypo, before = out["after_hypothesis"], out["before_hypothesis"]
    assert out["hypothesis"]["tags"] == {} and hypo["session_outcomes"] == []
    assert hypo["ranker_state"] == before["ranker_state"]
    assert all(row[4] == 0 for row in hypo["map_entries"])  # helpful column: none
    ev = out["after_evidence"]
    assert len(ev["session_outcomes"]) == 1 and len(ev["ranker_state"]) == 1
    assert out["again"]["status"] == "unchanged" and out["after_again"] == ev
    assert out["late0"]["status"] == "applied" and out["late1"]["status"] == "frozen"
    version, updates, steps, frozen = out["end"]
    assert (updates, steps, bool(frozen)) == (3, 3, True)
    assert version == out["late0"]["version"] == out["late1"]["version"]


def test_an_unconfirmed_model_ask_cannot_rewrite_or_drop_a_persons_edit(
        click: Path, tmp_path: Path) -> None:
    from peek.agent.scripted import ScriptedModel

    teach(click, TESTING, WRONG[:1])
    entry_id = next(i for i, e in entries(click).items() if TESTING in e["text"])
    words = "environment variables for options: src/click/core.py:11-13"
    assert run_peek("map", "edit", str(click), entry_id, words).returncode == 0
    plans = [{"edits": [{"op": "REPLACE", "id": entry_id, "text": "environment: the runner",
                         "candidate": None, "reason": "x"}]},
             {"edits": [{"op": "DELETE", "id": entry_id, "reason": "x"}]}]
    with Peek(click) as peek:
        for plan in plans:
            model = ScriptedModel.from_file(script(tmp_path, "See src/click/testing.py:7-10.", [
                {"diagnosis": "the map misled", "tags": [{"id": entry_id, "tag": "harmful"}],
                 "candidates": []}, plan]))
            assert peek.ask(QUESTION, model).map_version
            assert entries(click)[entry_id]["text"] == words
    assert entries(click)[entry_id]["harmful"] == 2  # its tags count all the same


# ------------------------------------------------------------------ 8. exact eviction

WORDS = st.sampled_from(["Option.resolve_envvar_value", "src/click/core.py:11-13", "envvar",
                         "the", "runner", "ünïcode", "=>", "12345", "CliRunner", "🙂", "a",
                         "sympy/core/basic.py", "don't", "\t", "  "])


@st.composite
def maps(draw: Any) -> list[Entry]:
    """Entries over every section, stale marks, pins and scores: what the real map renders."""
    out = []
    for n in range(1, draw(st.integers(1, 18)) + 1):
        slug = draw(st.sampled_from(["cr", "cu", "es", "dc", "rr", "pf"]))
        out.append(Entry(
            id=f"{slug}-{n:05d}", section=slug,
            text=" ".join(draw(st.lists(WORDS, min_size=1, max_size=14))),
            helpful=draw(st.integers(0, 3)), harmful=draw(st.integers(0, 1)),
            created_step=n, updated_step=draw(st.integers(0, n)),
            pinned=draw(st.integers(0, 9)) == 0, outdated=draw(st.booleans())))
    return out


def assert_exact(entries: list[Entry], budget: int) -> list[Entry]:
    """The kept map fits; every dropped entry would overflow it, by o200k on the real block."""
    dropped = Evictor().victims(entries, budget, step=len(entries))
    kept = [e for e in entries if e not in dropped]
    assert exact_tokens(render_entries(kept)) <= budget
    for entry in dropped:
        assert not entry.pinned
        assert exact_tokens(render_entries([*kept, entry])) > budget
    return dropped


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=maps(), slack=st.integers(-60, 0))
def test_eviction_is_exact_at_the_budget_edge_on_the_rendered_block(entries: list[Entry],
                                                                    slack: int) -> None:
    from helpers import reference_encoding

    from peek.contextmap.errors import BudgetError

    block = render_entries(entries)
    total = exact_tokens(block)
    assert total == len(reference_encoding().encode(block, disallowed_special=()))
    assert Evictor().victims(entries, total, step=len(entries)) == []  # exactly at budget
    for budget in {total - 1, total + slack}:
        if budget < 1:
            continue
        try:
            dropped = assert_exact(entries, budget)
        except BudgetError:  # the pinned entries alone are over: refused, nothing dropped
            pinned = render_entries(e for e in entries if e.pinned)
            assert exact_tokens(pinned) > budget
            continue
        if budget == total - 1:
            assert dropped  # one token over: something must go


def test_the_stored_map_read_at_its_exact_size_keeps_everything(click: Path) -> None:
    peek = Peek(click)
    for question, edited in [(QUESTION, CORE), ("echo prints a message", UTILS),
                             ("shell completion words", "src/click/shell.py")]:
        peek.record(session=peek.ask(question).session, edited=[edited], success=True)
    full = peek.map(budget=4096)
    exact = peek.map(budget=full.tokens)
    assert [e.id for e, _ in exact.entries] == [e.id for e, _ in full.entries]
    assert exact.tokens == full.tokens == exact_tokens(full.text)
    over = peek.map(budget=full.tokens - 1)
    kept = {e.id for e, _ in over.entries}
    assert over.tokens <= full.tokens - 1 and len(kept) < len(full.entries)
    for entry, _ in full.entries:
        if entry.id not in kept:
            with_it = [e for e, _ in full.entries if e.id in kept or e.id == entry.id]
            assert exact_tokens(render_entries(with_it)) > full.tokens - 1
    peek.close()


# ------------------------------------------------------------------ 9. the click example


def test_the_click_example_through_the_cli(click: Path) -> None:
    first = ask_json(click, QUESTION)
    assert first["citations"][0]["path"] == TESTING  # plain search picks the runner
    report = record(click, first["session"], CORE)
    assert report["status"] == "applied"
    nxt = ask_json(click, "how do options get their value from environment variables?")
    assert nxt["citations"][0]["path"] == CORE
    assert "learned: similar request" in first_lines(nxt["answer"])[0]
    text = run_peek("ask", str(click), "which code reads environment variables for options?")
    assert text.returncode == 0 and first_lines(text.stdout)[0].startswith(f"1. {CORE}:")


# ------------------------------------------------------------------ bad replay inputs


@pytest.mark.parametrize(("rows", "fragment"), [
    (None, "cannot read"),
    ("not json\n", "is not JSON"),
    ('{"corpus": "click", "question": "q"}\n', "gold_files"),
    ('{"corpus": "click", "question": "q", "gold_files": ["nope.py"]}\n',
     "no row of the replay has its gold files in its corpus"),
    ('{"corpus": "click", "question": "q", "gold_files": ["../outside.py"]}\n',
     "gold file '../outside.py'"),
    ('{"corpus": "click", "question": "q", "gold_files": ["/etc/hostname"]}\n',
     "gold file '/etc/hostname'"),
    ('{"id": "x1", "corpus": "click", "question": "q", "gold_files": ["src/../../outside.py"]}\n',
     "row x1: gold file"),
    ('{"corpus": "..", "question": "q", "gold_files": ["click/src/click/utils.py"]}\n',
     "corpus '..' is not a folder name"),
])
def test_bad_replay_files_are_one_line_before_any_work_and_touch_no_store(
        click: Path, home: Path, tmp_path: Path, rows: str | None, fragment: str) -> None:
    (tmp_path / "outside.py").write_text("x = 1\n")
    history = tmp_path / "history.jsonl"
    if rows is not None:
        history.write_text(rows)
    before = files_of(home)
    for arms in ("learned,off", "off"):
        done = run_peek("eval", "--replay", str(history), "--corpus", str(click), "--arms", arms)
        one_line_error(done, fragment)
    assert files_of(home) == before


def test_a_replay_row_whose_gold_file_is_not_in_the_corpus_is_dropped_and_named(
        click: Path, home: Path, tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    history.write_text(
        '{"id": "ok", "corpus": "click", "question": "where are options parsed?", '
        '"gold_files": ["src/click/core.py"]}\n'
        '{"id": "gone", "corpus": "click", "question": "q", "gold_files": ["nope.py"]}\n')
    done = run_peek("eval", "--replay", str(history), "--corpus", str(click), "--arms", "off",
                    "--json")
    assert done.returncode == 0, done.stderr
    assert "1 rows dropped" in done.stderr and "gone" in done.stderr
    report = json.loads(done.stdout)
    assert report["rows"] == 1
    assert report["dropped"] == [{"id": "gone", "corpus": "click", "missing": ["nope.py"]}]
