"""Outcome summaries (issue 9): what a recorded change did, in words, teaches similar requests.

A host that reports an outcome usually knows what the change did (its commit message). The
summary is stored with the outcome (migration 0015), indexed with the question and in each
edited file's profile, remembered with the outcome, and amendable once recorded without the
outcome being applied twice. Every front door takes it: `peek record --summary`, a trajectory's
`outcome.summary`, MCP `peek_record`'s `summary`, the SDK and `peek eval --replay` rows.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import PEEK_BIN, run_alembic, run_peek
from sqlalchemy import text
from test_learning import counts
from test_mcp import stdio_session, text_of

from peek.agent.localize import profile_scores, profile_table
from peek.bounds import SUMMARY_MAX
from peek.contextmap.distiller import trajectory_digest
from peek.contextmap.trajectory import parse_trajectory
from peek.db import Database, open_database
from peek.errors import QueryError
from peek.evals.replay import ReplayRow, load_replay, replay
from peek.memory.outcomes import fts_name, similar_outcomes
from peek.memory.store import load_turns
from peek.retrieval.lexical import fts_match
from peek.service import Peek
from peek.text import expand_for_index, query_terms

# The ledger is where money is kept; the report is where plain search sends a question about
# float drift in money amounts. The past request (about invoice rounding) shares no word with
# that question; only what its change did does.
SHOP = {
    "shop/ledger.py": (
        "class Ledger:\n"
        '    """The book of entries a shop keeps."""\n\n'
        "    def post(self, entry):\n"
        "        self.entries.append(entry)\n\n"
        "    def balance(self):\n"
        "        return sum(e.value for e in self.entries)\n"
    ),
    "shop/report.py": (
        "def monthly_report(ledger):\n"
        '    """Print money amounts per month; float values may drift."""\n'
        "    amounts = [e.value for e in ledger.entries]  # money amounts as float\n"
        "    return sum(amounts)  # float drift shows in money amounts\n"
    ),
    "shop/invoice.py": (
        "def invoice_total(lines):\n"
        '    """Add up an invoice."""\n'
        "    return round(sum(l.price for l in lines), 2)\n"
    ),
    "shop/cart.py": "def add(cart, item):\n    cart.append(item)\n",
}
PAST = "fix rounding of invoice totals"
SUMMARY = "Keep money amounts as integer cents in the Ledger so float drift cannot creep in"
NEW = "why do float money amounts drift?"
OTHER = "Ledger entries carry a currency code for shops selling abroad"
EDITED = "shop/ledger.py"


def _ask(root: Path, question: str = PAST) -> str:
    out = run_peek("ask", str(root), question, "--json")
    assert out.returncode == 0, out.stderr
    return str(json.loads(out.stdout)["session"])


def _record(root: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[
        bytes]:
    """`peek record` as a real subprocess (bytes, so stdin may be anything)."""
    return subprocess.run([str(PEEK_BIN), "record", str(root), *args], input=stdin,
                          capture_output=True, timeout=120)


def _stored_summary(peek: Peek, session: str) -> str | None:
    with peek.db.read() as conn:
        return conn.execute(text("SELECT summary FROM session_outcomes WHERE session = :s"),
                            {"s": session}).scalar()


def _similar(peek: Peek, question: str) -> list[tuple[str, tuple[str, ...]]]:
    with peek.db.query() as conn:
        return [(p.question, p.edited) for p, _ in similar_outcomes(conn, peek.corpus_id,
                                                                    question)]


def _one_line_error(out: subprocess.CompletedProcess[bytes], *words: str) -> None:
    err = out.stderr.decode()
    assert out.returncode == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("peek: error:"), err
    assert all(w in err for w in words), err


@pytest.mark.parametrize("with_summary", [True, False])
def test_a_question_worded_like_the_summary_finds_the_past_request(shop: Path,
                                                                  with_summary: bool) -> None:
    session = _ask(shop)
    args = ["--session", session, "--edited", EDITED, "--success"]
    out = _record(shop, *args, *(["--summary", SUMMARY] if with_summary else []))
    assert out.returncode == 0, out.stderr
    answer = Peek(shop).ask(NEW, learn=False)
    first = answer.answer.splitlines()[1]
    if with_summary:  # the summary's words carry the new question to the request it described
        assert answer.citations[0].path == EDITED
        assert f"learned: similar request '{PAST}'" in first
    else:  # the control: without the summary nothing links the two
        assert answer.citations[0].path != EDITED
        assert "learned" not in answer.answer


def test_the_summary_is_stored_indexed_and_remembered_with_the_outcome(shop: Path) -> None:
    session = _ask(shop)
    out = _record(shop, "--session", session, "--edited", EDITED, "--success", "--summary",
                  f"  {SUMMARY}\n")
    assert out.returncode == 0, out.stderr
    peek = Peek(shop)
    assert _stored_summary(peek, session) == SUMMARY  # stripped
    assert _similar(peek, NEW) == [(PAST, (EDITED,))]
    with peek.db.query() as conn:
        assert EDITED in profile_scores(conn, peek.corpus_id, NEW)
        turns = [t.text for t in load_turns(conn, peek.corpus_id)
                 if t.turn_id == f"session:{session}:outcome"]
    assert turns == [f"Outcome of: {PAST}\nEdited: {EDITED}; succeeded\nSummary: {SUMMARY}"]


def test_the_same_outcome_and_summary_again_change_nothing(shop: Path) -> None:
    peek = Peek(shop)
    session = peek.ask(PAST).session
    first = peek.record(session=session, edited=[EDITED], success=True, summary=SUMMARY)
    before = counts(peek)
    again = peek.record(session=session, edited=[EDITED], success=True, summary=SUMMARY)
    bare = peek.record(session=session, edited=[EDITED], success=True)  # no summary: keep it
    assert first.status == "applied" and again.status == bare.status == "unchanged"
    assert counts(peek) == before
    assert _stored_summary(peek, session) == SUMMARY


def test_a_new_summary_amends_the_recorded_one_and_applies_nothing_again(shop: Path) -> None:
    peek = Peek(shop)
    session = peek.ask(PAST).session
    peek.record(session=session, edited=[EDITED], success=True, summary=SUMMARY)
    before, learned = counts(peek), _ranker(peek)
    out = _record(shop, "--session", session, "--summary", OTHER, "--json")  # a bare summary
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "amended"
    assert _stored_summary(peek, session) == OTHER
    after = counts(peek)
    assert after == {**before, "memory_turns": before["memory_turns"] + 1}
    assert _ranker(peek) == learned  # the outcome taught once
    assert _similar(peek, NEW) == []  # the old summary's words are gone from both indexes
    assert _similar(peek, "currency code abroad") == [(PAST, (EDITED,))]
    with peek.db.query() as conn:
        assert EDITED not in profile_scores(conn, peek.corpus_id, NEW)
        assert EDITED in profile_scores(conn, peek.corpus_id, "currency abroad")
        memory = [t.text for t in load_turns(conn, peek.corpus_id)
                  if t.turn_id.startswith(f"session:{session}:summary:")]
    assert memory == [f"Summary of: {PAST}\n{OTHER}"]
    same = peek.record(session=session, edited=[EDITED], success=True, summary=OTHER)
    assert same.status == "unchanged" and counts(peek) == after
    with pytest.raises(QueryError, match="already has a recorded outcome"):
        peek.record(session=session, edited=["shop/cart.py"], success=True, summary=SUMMARY)
    assert _stored_summary(peek, session) == OTHER and counts(peek) == after


def _ranker(peek: Peek) -> tuple[Any, ...]:
    with peek.db.read() as conn:
        return tuple(conn.execute(text("SELECT weights, updates FROM ranker_state")).one())


def test_a_summary_without_an_outcome_is_refused(shop: Path) -> None:
    session = _ask(shop)
    before = counts(Peek(shop))
    _one_line_error(_record(shop, "--session", session, "--summary", SUMMARY),
                    "summary needs an outcome")
    assert counts(Peek(shop)) == before


def test_an_overlong_or_non_text_summary_is_a_one_line_error(shop: Path) -> None:
    session = _ask(shop)
    peek = Peek(shop)
    before = counts(peek)
    args = ["--session", session, "--edited", EDITED, "--success", "--summary"]
    _one_line_error(_record(shop, *args, "x" * (SUMMARY_MAX + 1)),
                    f"at most {SUMMARY_MAX} characters", str(SUMMARY_MAX + 1))
    with pytest.raises(QueryError, match="summary must be text"):
        peek.record(session=session, edited=[EDITED], success=True, summary=42)  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="NUL"):
        peek.record(session=session, edited=[EDITED], success=True, summary="a\x00b")
    assert counts(peek) == before
    longest = "y" * SUMMARY_MAX
    assert peek.record(session=session, edited=[EDITED], success=True,
                       summary=longest).status == "applied"
    assert _stored_summary(peek, session) == longest


def test_a_summary_from_stdin_must_be_utf8(shop: Path) -> None:
    session = _ask(shop)
    args = ["--session", session, "--edited", EDITED, "--success", "--summary", "-"]
    before = counts(Peek(shop))
    _one_line_error(_record(shop, *args, stdin=b"cents \xff\xfe drift"), "not UTF-8")
    _one_line_error(_record(shop, "-t", "-", *args, stdin=b"{}"), "only one of")
    assert counts(Peek(shop)) == before
    out = _record(shop, *args, stdin=f"{SUMMARY}\n".encode())
    assert out.returncode == 0, out.stderr
    assert _stored_summary(Peek(shop), session) == SUMMARY


def _trajectory(tmp: Path, summary: str) -> Path:
    path = tmp / "traj.json"
    path.write_text(json.dumps({
        "question": PAST, "answer": "in the ledger", "steps": [],
        "outcome": {"edited_files": [EDITED], "success": True, "summary": summary}}))
    return path


def test_a_trajectory_brings_its_outcome_summary_and_the_flag_wins(shop: Path,
                                                                  tmp_path: Path) -> None:
    out = _record(shop, "-t", str(_trajectory(tmp_path, SUMMARY)), "--session", "host-1")
    assert out.returncode == 0, out.stderr
    out = _record(shop, "-t", str(_trajectory(tmp_path, SUMMARY)), "--session", "host-2",
                  "--summary", OTHER)
    assert out.returncode == 0, out.stderr
    peek = Peek(shop)
    assert _stored_summary(peek, "host-1") == SUMMARY
    assert _stored_summary(peek, "host-2") == OTHER


def test_the_llm_distiller_reads_the_summary() -> None:
    traj = parse_trajectory({"question": PAST, "answer": "a", "outcome": {
        "edited_files": [EDITED], "success": True, "summary": SUMMARY}})
    assert f"Summary of the change: {SUMMARY}" in trajectory_digest(traj)
    bare = parse_trajectory({"question": PAST, "answer": "a"})
    assert "Summary" not in trajectory_digest(bare)


def test_mcp_peek_record_takes_a_summary(shop: Path, home: Path) -> None:
    corpus = str(shop.resolve())
    report = {"corpus": corpus, "question": PAST, "session": "mcp-task",
              "files_edited": [EDITED], "success": True}

    async def script() -> list[Any]:
        async with stdio_session(home) as session:
            return [await session.call_tool("peek_record", {**report, **extra}) for extra in (
                {"summary": "z" * (SUMMARY_MAX + 1)}, {"summary": SUMMARY},
                {"summary": SUMMARY}, {"summary": OTHER})]

    too_long, first, again, amended = asyncio.run(script())
    assert too_long.is_error and f"at most {SUMMARY_MAX} characters" in text_of(too_long)
    statuses = [(r.structured_content or {}).get("status") for r in (first, again, amended)]
    assert statuses == ["applied", "unchanged", "amended"]
    peek = Peek(shop)
    assert _stored_summary(peek, "mcp-task") == OTHER
    assert _similar(peek, "currency code abroad") == [(PAST, (EDITED,))]


def test_replay_rows_may_carry_a_summary(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    base = {"corpus": "shop", "question": PAST, "gold_files": [EDITED]}
    rows.write_text("\n".join(json.dumps(r) for r in (
        {**base, "id": "a", "summary": SUMMARY}, {**base, "id": "b"})) + "\n")
    assert [r.summary for r in load_replay(rows)] == [SUMMARY, None]
    too_long = "x" * (SUMMARY_MAX + 1)
    for bad, says in ((42, "summary must be text"), (too_long, "summary must be at most")):
        rows.write_text(json.dumps({**base, "summary": bad}) + "\n")
        with pytest.raises(QueryError, match=f"rows.jsonl:1: {says}"):
            load_replay(rows)


def test_replay_records_a_row_summary_as_a_host_would(make_corpus: Any, home: Path) -> None:
    corpora = {"shop": make_corpus(SHOP)}

    def recall_at_1(summary: str | None) -> float:
        rows = [ReplayRow("1", "shop", PAST, (EDITED,), summary),
                ReplayRow("2", "shop", NEW, (EDITED,))]
        report = replay(rows, corpora, arms=("learned",))
        return float(report["arms"]["learned"]["all"]["recall@1"])  # row 2 only

    assert recall_at_1(SUMMARY) == 1.0
    assert recall_at_1(None) == 0.0


# ------------------------------------------------------------------ migration 0015

def _matches(db: Database, table: str, word: str, key: str | None = None) -> list[Any]:
    """What a full-text index holds for a word, read without the code's model of the schema."""
    with db.query() as raw:
        return [r[1] if key else r[0] for r in fts_match(raw, table, query_terms(word), 10, key)]


def _check_0014(db: Database, cid: int) -> None:
    """The store as 0014 has it: no summary column, and the outcome documents that 0014's code
    makes (the questions alone) in both indexes."""
    with db.read() as conn:
        assert "summary" not in set(conn.execute(text("SELECT * FROM session_outcomes")).keys())
    for word in ("drift", "cents"):
        assert _matches(db, fts_name(cid), word) == []
        assert _matches(db, profile_table(cid), word, "path") == []
    assert len(_matches(db, fts_name(cid), "invoice")) == 1
    assert _matches(db, profile_table(cid), "rounding", "path") == [EDITED]
    if db.backend == "sqlite":
        with db.query() as raw:
            docs = raw.execute(f"SELECT o.question, f.question FROM session_outcomes o JOIN "
                               f"{fts_name(cid)} f ON f.rowid = o.id").fetchall()
        assert docs and all(d == expand_for_index(q) for q, d in docs)


def _round_trip(root: Path, home: Path, target: str | Path) -> None:
    """Record with and without a summary, downgrade to 0014, check its form, migrate back up."""
    from alembic import command

    with Peek(root, home) as p:
        p.index()
        first = p.ask(PAST).session
        p.record(session=first, edited=[EDITED], success=True, summary=SUMMARY)
        p.record(session=p.ask("add an item to the cart").session, edited=["shop/cart.py"],
                 success=True)
        assert _similar(p, NEW) == [(PAST, (EDITED,))]
        cid = p.corpus_id
    db = open_database(target)
    run_alembic(db, command.downgrade, "0014")
    _check_0014(db, cid)
    db.close()
    open_database(target).close()  # opening migrates to the head revision
    with Peek(root, home) as p:
        assert _stored_summary(p, first) is None and _similar(p, NEW) == []
        assert _similar(p, PAST)[0] == (PAST, (EDITED,))
        again = p.record(session=first, edited=[EDITED], success=True, summary=SUMMARY)
        assert again.status == "amended" and _similar(p, NEW) == [(PAST, (EDITED,))]


def test_migration_0015_round_trips_on_sqlite(make_corpus: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    _round_trip(make_corpus(SHOP), home, home / "peek.db")


@pytest.mark.postgres
def test_migration_0015_round_trips_on_postgres(make_corpus: Any, tmp_path: Path, pg_url: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEEK_DATABASE_URL", pg_url)
    _round_trip(make_corpus(SHOP), tmp_path / "home", pg_url)


def test_a_copied_store_indexes_the_summaries_again(shop: Path, home: Path,
                                                    tmp_path: Path) -> None:
    from peek.storecopy import copy_store

    peek = Peek(shop)
    peek.record(session=peek.ask(PAST).session, edited=[EDITED], success=True, summary=SUMMARY)
    peek.close()
    copy = tmp_path / "copy" / "peek.db"
    source, target = open_database(home / "peek.db"), open_database(copy)
    copy_store(source, target)
    source.close()
    target.close()
    with Peek(shop, copy.parent) as copied:
        assert _similar(copied, NEW) == [(PAST, (EDITED,))]
        with copied.db.query() as conn:
            assert EDITED in profile_scores(conn, copied.corpus_id, NEW)
