"""Learning that pays: outcomes teach, answers do not, corrections stick, reads never write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import CLICK, run_peek
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from peek.agent.models import Reply, ToolCall
from peek.agent.scripted import ScriptedModel
from peek.contextmap.evictor import Evictor
from peek.contextmap.model import Entry
from peek.contextmap.render import render_entries
from peek.contextmap.tokens import exact_tokens
from peek.errors import QueryError
from peek.memory.store import load_turns
from peek.service import Peek

QUESTION = "where are environment variables read for options?"


@pytest.fixture
def click(make_corpus, home: Path) -> Path:
    root = make_corpus(CLICK)
    assert run_peek("index", str(root)).returncode == 0
    return root


def counts(peek: Peek) -> dict[str, int]:
    """Rows in every table a session can write to: a read must leave them all alone."""
    tables = ["agent_sessions", "map_sessions", "map_edits", "memory_turns", "session_outcomes"]
    with peek.db.read() as conn:
        out = {t: int(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() or 0)
               for t in tables}
        out["version"] = int(conn.execute(text("SELECT MAX(version) FROM map_state")).scalar()
                             or 0)
    return out


def test_an_unconfirmed_answer_is_not_learned(click: Path) -> None:
    peek = Peek(click)
    first = peek.ask(QUESTION)
    assert first.citations[0].path == "src/click/testing.py"  # plain search picks the runner
    version = peek.map().version
    again = peek.ask("which code reads environment variables for options?")
    assert peek.map().version == version
    assert not any("learned" in line for line in again.answer.splitlines()[:3])


def test_recording_the_right_file_makes_the_next_related_ask_cite_it_first(click: Path) -> None:
    first = json.loads(run_peek("ask", str(click), QUESTION, "--json").stdout)
    out = run_peek("record", str(click), "--session", first["session"],
                   "--edited", "src/click/core.py", "--success", "--json")
    assert out.returncode == 0, out.stderr
    again = Peek(click).ask("how do options get their value from environment variables?",
                            learn=False)
    assert again.citations[0].path == "src/click/core.py"
    assert "learned: similar request" in again.answer


def test_a_map_edit_moves_the_anchors_and_the_next_ask_follows(click: Path) -> None:
    peek = Peek(click)
    first = peek.ask(QUESTION)
    peek.record(session=first.session, edited=["src/click/testing.py"], success=True)
    entry = next(e for e, _ in peek.map().entries if "testing.py" in e.text)
    peek.map_edit(entry.id, "environment variables for options: src/click/core.py:10-12 "
                            "(Option.resolve_envvar_value)")
    edited = next(e for e, _ in peek.map().entries if e.id == entry.id)
    assert {a.path for a in edited.anchors} == {"src/click/core.py"}
    assert (edited.anchors[0].start_line, edited.anchors[0].end_line) == (10, 12)
    peek.map_pin(entry.id)
    after = peek.ask("where do options read environment variables?", learn=False)
    assert after.citations[0].path == "src/click/core.py"
    assert f"map {entry.id}" in after.answer


def test_forget_is_not_undone_by_later_asks(click: Path) -> None:
    peek = Peek(click)
    first = peek.ask(QUESTION)
    peek.record(session=first.session, edited=["src/click/core.py"], success=True)
    learned = [e.id for e, _ in peek.map().entries if "core.py" in e.text]
    assert learned
    for entry_id in learned:
        peek.map_forget(entry_id)
    for _ in range(3):
        peek.ask(QUESTION)
    assert not any("core.py" in e.text for e, _ in peek.map().entries)


def test_recording_twice_applies_once_and_a_different_outcome_is_refused(click: Path) -> None:
    peek = Peek(click)
    session = peek.ask(QUESTION).session
    first = peek.record(session=session, edited=["src/click/core.py"], success=True)
    before = counts(peek)
    second = peek.record(session=session, edited=["src/click/core.py"], success=True)
    assert first.status == "applied" and second.status == "unchanged"
    assert counts(peek) == before
    with pytest.raises(QueryError, match="already has a recorded outcome"):
        peek.record(session=session, edited=["src/click/utils.py"], success=True)
    assert counts(peek) == before


def test_a_failed_attempt_is_remembered_as_failed_for_similar_requests(click: Path) -> None:
    from peek.memory.outcomes import similar_outcomes

    peek = Peek(click)
    session = peek.ask(QUESTION).session
    peek.record(session=session, edited=["src/click/core.py"], success=False)
    with peek.db.query() as conn:
        found = similar_outcomes(conn, peek.corpus_id, QUESTION)
    assert [p.edited for p, _ in found] == [("src/click/core.py",)]
    assert found[0][0].success is False  # a bool (SQLite stores 0), so the ranker trusts it less


def test_unknown_edited_files_are_an_error_naming_them(click: Path) -> None:
    session = json.loads(run_peek("ask", str(click), QUESTION, "--json").stdout)["session"]
    before = counts(Peek(click))
    out = run_peek("record", str(click), "--session", session, "--edited", "src/click/core.py",
                   "nope/missing.py", "--success")
    assert out.returncode == 2
    assert "nope/missing.py" in out.stderr and "src/click/core.py" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert counts(Peek(click)) == before


def test_the_outcome_reaches_episodic_memory(click: Path) -> None:
    peek = Peek(click)
    session = peek.ask(QUESTION).session
    peek.record(session=session, edited=["src/click/core.py"], success=True)
    with peek.db.read() as conn:
        turns = [t.text for t in load_turns(conn, peek.corpus_id)
                 if t.turn_id.startswith(f"session:{session}")]
    assert len(turns) == 2
    assert any("Edited: src/click/core.py; succeeded" in t for t in turns)


def test_read_paths_never_write(click: Path) -> None:
    peek = Peek(click)
    session = peek.ask(QUESTION).session
    peek.record(session=session, edited=["src/click/core.py"], success=True)
    (click / "src/click/core.py").write_text(CLICK["src/click/core.py"] + "\n# changed\n")
    before = counts(peek)
    peek.map()
    peek.map(budget=64)
    peek.status()
    peek.search("environment")
    peek.ask(QUESTION, learn=False)
    for command in (["map", str(click)], ["status", str(click)], ["search", str(click), "env"]):
        assert run_peek(*command).returncode == 0
    assert counts(Peek(click)) == before
    shown = run_peek("status", str(click))
    assert "learned from 1 recorded outcome of 1 session (1 ranker update)" in shown.stdout


def test_learn_false_with_a_model_writes_nothing(click: Path) -> None:
    peek = Peek(click)
    before = counts(peek)
    model = ScriptedModel([
        Reply("", (ToolCall("c1", "search", {"query": "environment variables"}),)),
        Reply("Options read them in src/click/core.py:10-12."),
    ])
    result = peek.ask(QUESTION, model, learn=False)
    assert [c.path for c in result.citations] == ["src/click/core.py"]
    assert counts(peek) == before


def test_model_sessions_carry_tool_outputs_and_reasoning_to_the_distiller(click: Path) -> None:
    peek = Peek(click)
    model = ScriptedModel([
        Reply("Let me search for envvar handling.",
              (ToolCall("c1", "search", {"query": "envvar"}),)),
        Reply("Options read them in src/click/core.py:10-12."),
    ], json_replies=['{"diagnosis": "found it", "tags": [], "candidates": []}',
                     '{"edits": []}'])
    result = peek.ask(QUESTION, model)
    steps = result.trajectory["steps"]
    assert steps[0]["thought"] == "Let me search for envvar handling."
    assert "resolve_envvar_value" in steps[0]["output"]
    distiller_prompt = model.seen_json[0][1]
    assert "resolve_envvar_value" in distiller_prompt
    assert "Let me search for envvar handling." in distiller_prompt


def test_eval_no_map_arm_has_no_memory_of_taught_sessions(click: Path, tmp_path: Path) -> None:
    items = [{"question": QUESTION, "gold_files": ["src/click/core.py"]},
             {"question": "options and environment variables", "gold_files": ["src/click/core.py"]}]
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("".join(json.dumps(i) + "\n" for i in items))
    before = counts(Peek(click))
    report = json.loads(run_peek("eval", str(qfile), "--corpus", str(click), "--learn", "1",
                                 "--json").stdout)
    assert report["recall@1"] == 1.0 and report["no_map"]["recall@1"] == 0.0
    assert counts(Peek(click)) == before


@pytest.mark.slow
def test_replay_learns_and_never_opens_the_users_store(click: Path, tmp_path: Path,
                                                       home: Path) -> None:
    rows = [{"id": f"r{i}", "corpus": click.name, "question": q, "gold_files": [g]}
            for i, (q, g) in enumerate([
                (QUESTION, "src/click/core.py"),
                ("options read from environment variables", "src/click/core.py"),
                ("echo prints a message", "src/click/utils.py"),
                ("environment variables for options are ignored", "src/click/core.py"),
                ("option envvar lookup order", "src/click/core.py"),
                ("environment variables not read for options", "src/click/core.py")])]
    history = tmp_path / "history.jsonl"
    history.write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = counts(Peek(click))
    out = run_peek("eval", "--replay", str(history), "--corpus", str(click.parent), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    learned, off = report["arms"]["learned"], report["arms"]["off"]
    assert learned["all"]["n"] == off["all"]["n"] == 3
    assert learned["all"]["recall@1"] == 1.0 and off["all"]["recall@1"] < 1.0
    assert report["gain_recall@5"]["all"] >= 0.0
    assert learned["curve"][click.name] and report["learned_ms"]["record"] > 0
    assert learned["tune"]["all"]["n"] == learned["tune"][click.name]["n"] == 2
    assert counts(Peek(click)) == before
    text_out = run_peek("eval", "--replay", str(history), "--corpus", str(click.parent),
                        "--arms", "off")
    assert text_out.returncode == 0 and "| off" in text_out.stdout
    assert "tune split (rows 25-50% of each corpus) off" in text_out.stdout


def test_replay_reports_the_tune_split_apart_from_the_later_halves() -> None:
    from peek.evals.evaluate import Scored
    from peek.evals.replay import ReplayRow, _report

    def row(n: int, hit: bool) -> Scored:
        return Scored(f"r{n}", ["a.py"], ("a.py" if hit else "b.py",), 0, 0.0, 0,
                      recall={1: float(hit), 5: float(hit), 10: float(hit)}, rr=float(hit))

    hits = {"p": [False, False, True, True, False, False, False, False],
            "q": [False, True, False, False]}
    scored = {"off": {c: [row(i, h) for i, h in enumerate(v)] for c, v in hits.items()}}
    rows = {c: [ReplayRow(f"r{i}", c, "q", ("a.py",)) for i in range(len(v))]
            for c, v in hits.items()}
    arm = _report(scored, rows, {"ask": [], "record": []})["arms"]["off"]
    assert arm["tune"]["p"] == {**arm["tune"]["p"], "n": 2, "recall@5": 1.0}
    assert arm["tune"]["q"]["n"] == 1 and arm["tune"]["q"]["recall@5"] == 1.0
    assert arm["tune"]["all"]["n"] == 3 and arm["all"]["recall@5"] == 0.0


def test_replay_rejects_bad_rows_and_unknown_arms(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"corpus": "x", "question": "q"}\n')
    out = run_peek("eval", "--replay", str(bad), "--corpus", str(tmp_path))
    assert out.returncode == 2 and "gold_files" in out.stderr
    good = tmp_path / "good.jsonl"
    good.write_text('{"corpus": "nowhere", "question": "q", "gold_files": ["a.py"]}\n')
    out = run_peek("eval", "--replay", str(good), "--corpus", str(tmp_path))
    assert out.returncode == 2 and "no folder for corpus 'nowhere'" in out.stderr


def _entry(n: int, words: int, helpful: int) -> Entry:
    return Entry(id=f"cr-{n:05d}", section="cr", text=" ".join(["token"] * words) + f" {n}",
                 created_step=n, updated_step=n, helpful=helpful)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.tuples(st.integers(1, 40), st.integers(0, 3)), min_size=1,
                      max_size=25),
       budget=st.integers(40, 400))
def test_the_evictor_never_drops_an_entry_the_map_would_fit_with(
        sizes: list[tuple[int, int]], budget: int) -> None:
    entries = [_entry(n, w, h) for n, (w, h) in enumerate(sizes, 1)]
    dropped = Evictor().victims(entries, budget, step=len(entries))
    kept = [e for e in entries if e not in dropped]
    assert exact_tokens(render_entries(kept)) <= budget
    for entry in dropped:
        assert exact_tokens(render_entries([*kept, entry])) > budget


def test_memory_serves_a_changed_file_as_stale_before_the_next_index(click: Path) -> None:
    peek = Peek(click)
    session = peek.ask(QUESTION).session
    peek.record(session=session, edited=["src/click/core.py"], success=True)
    before = counts(peek)
    fresh = peek.memory_search("environment variables options", k=5).to_dict()["results"]
    assert fresh and not any("stale" in r["text"] for r in fresh)
    core = click / "src/click/core.py"
    core.write_text(CLICK["src/click/core.py"] + "\n# changed since\n")
    served = peek.memory_search("environment variables options", k=5).to_dict()["results"]
    assert any("stale" in r["text"] for r in served)  # marked on read, no index needed
    assert counts(peek) == before  # and nothing was written to mark it
    core.write_text(CLICK["src/click/core.py"])
    again = peek.memory_search("environment variables options", k=5).to_dict()["results"]
    assert not any("stale" in r["text"] for r in again)
