"""Outcome corrections (issue 9, "corrections stick"): a recorded outcome can be withdrawn or
replaced, and what it taught goes with it.

`peek record --retract` (MCP `retract`, SDK `Peek.retract`) takes back the ranker step the
outcome took (migration 0016 keeps it), removes it from similar-request matching, file profiles,
edit counts and co-edits, reverses its map update where nothing built on it since, and logs what
it said in `outcome_corrections`. `--correct` does that and records the new outcome.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import PEEK_BIN, run_alembic, run_peek
from sqlalchemy import text
from test_learning import counts
from test_mcp import stdio_session, text_of
from test_outcome_summary import SHOP

from peek.agent.localize import FEATURES, history, load_weights, profile_scores
from peek.db import open_database
from peek.errors import QueryError
from peek.memory.outcomes import similar_outcomes
from peek.memory.store import load_turns
from peek.service import Peek

PAST = "fix rounding of invoice totals"
RELATED = "rounding of invoice sums"
WRONG, RIGHT = "shop/cart.py", "shop/invoice.py"
# A question whose ranked candidates hold the ledger below the top, so its outcome moves weights.
STEPPED = "money amounts of ledger entries and invoice lines"


def _ask(root: Path, question: str) -> dict[str, Any]:
    out = run_peek("ask", str(root), question, "--json")
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def _record(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_peek("record", str(root), *args)


def _one_line_error(out: subprocess.CompletedProcess[str], *words: str) -> None:
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith("peek: error:") and all(w in out.stderr for w in words), out.stderr


def _learned(answer: dict[str, Any]) -> list[str]:
    """The cited files whose shown reasons say an earlier outcome put them there."""
    lines = (re.match(r"\d+\. (\S+?):\d+\S* .*\((.*)\)$", ln)
             for ln in answer["answer"].splitlines())
    return [m[1] for m in lines if m and "learned:" in m[2]]


def _taught(peek: Peek) -> dict[str, Any]:
    """Everything an outcome teaches the ranker and the outcome indexes."""
    with peek.db.read() as conn:
        return {"weights": load_weights(conn, peek.corpus_id),
                "updates": conn.execute(text("SELECT COALESCE(SUM(updates), 0) FROM "
                                             "ranker_state")).scalar(),
                "edits": history(conn, peek.corpus_id).edits,
                "similar": similar_outcomes(conn, peek.corpus_id, PAST),
                "profiles": profile_scores(conn, peek.corpus_id, PAST)}


def _remembered(peek: Peek, session: str) -> list[str]:
    """The texts of the session's memory turns."""
    with peek.db.read() as conn:
        return [t.text for t in load_turns(conn, peek.corpus_id)
                if t.session == f"session:{session}"]


def _entries(peek: Peek) -> dict[str, tuple[Any, ...]]:
    return {e.id: (e.text, e.helpful, e.harmful, e.stale, e.uses, e.anchors)
            for e, _ in peek.map().entries}


def test_a_wrong_outcome_corrected_teaches_the_right_file_and_unteaches_the_wrong(
        shop: Path) -> None:
    session = _ask(shop, PAST)["session"]
    assert _record(shop, "--session", session, "--edited", WRONG, "--success").returncode == 0
    assert _learned(_ask(shop, RELATED))[:1] == [WRONG]

    refused = _record(shop, "--session", session, "--edited", RIGHT, "--success")
    _one_line_error(refused, "already has a recorded outcome", "--correct")
    out = _record(shop, "--session", session, "--edited", RIGHT, "--success", "--correct",
                  "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "applied"

    answer = _ask(shop, RELATED)
    assert answer["citations"][0]["path"] == RIGHT and _learned(answer) == [RIGHT]
    peek = Peek(shop)
    assert [p.edited for p, _ in _taught(peek)["similar"]] == [(RIGHT,)]
    assert set(_taught(peek)["profiles"]) == {RIGHT}
    assert [e for e in _entries(peek).values() if WRONG in e[0]] == []
    trail = peek.corrections(session)
    assert [(t.before["edited"], (t.after or {})["edited"], t.reason) for t in trail] == [
        ([WRONG], [RIGHT], "corrected")]
    remembered = _remembered(peek, session)
    assert any(RIGHT in t for t in remembered) and not any(WRONG in t for t in remembered)
    assert any(RIGHT in h.text for h in peek.memory_search("Outcome of invoice totals").results)
    status = run_peek("status", str(shop))
    assert "1 recorded outcome of 3 sessions" in status.stdout, status.stdout
    assert "1 outcome corrected or retracted" in status.stdout, status.stdout


def test_a_retraction_leaves_the_ranker_indexes_and_map_as_before(shop: Path) -> None:
    peek = Peek(shop)
    peek.record(session=peek.ask(PAST).session, edited=[RIGHT], success=True)  # kept throughout
    before, entries = _taught(peek), _entries(peek)
    session = peek.ask(STEPPED).session
    peek.record(session=session, edited=["shop/ledger.py"], success=True)
    taught = _taught(peek)
    assert taught["weights"] != before["weights"] and taught["updates"] == before["updates"] + 1
    assert _entries(peek) != entries

    result = peek.retract(session)
    assert result.status == "retracted" and result.edits
    assert {e.op for e in result.edits} == {"RETRACT"}
    after = _taught(peek)
    assert after["weights"] == pytest.approx(before["weights"], abs=2e-6)
    assert {k: v for k, v in after.items() if k != "weights"} == {
        k: v for k, v in before.items() if k != "weights"}
    assert _entries(peek) == entries
    assert _remembered(peek, session) == []
    assert {f.turn_id for f in peek.memory_forgotten()} == {
        f"session:{session}", f"session:{session}:outcome"}
    with pytest.raises(QueryError, match="has no recorded outcome"):
        peek.retract(session)
    assert peek.corrections()[-1].after is None


def test_a_retraction_keeps_what_a_person_vouched_for(shop: Path) -> None:
    peek = Peek(shop)
    session = peek.ask(PAST).session
    added = [e.entry_id for e in peek.record(session=session, edited=[WRONG],
                                             success=True).edits if e.op == "ADD"]
    assert added
    peek.map_edit(added[0], f"invoice totals are rounded in {RIGHT}:1-3")
    peek.retract(session)
    assert added[0] in _entries(peek)


def test_correct_is_a_plain_record_when_nothing_is_recorded_and_a_no_op_when_the_same(
        shop: Path) -> None:
    peek = Peek(shop)
    session = peek.ask(PAST).session
    assert peek.record(session=session, edited=[RIGHT], success=True,
                       correct=True).status == "applied"
    before = counts(peek)
    again = peek.record(session=session, edited=[RIGHT], success=True, correct=True)
    assert again.status == "unchanged" and counts(peek) == before and peek.corrections() == []


def test_bad_retractions_and_corrections_are_one_line_errors_that_change_nothing(
        shop: Path) -> None:
    session = _ask(shop, PAST)["session"]
    assert _record(shop, "--session", session, "--edited", WRONG, "--success").returncode == 0
    before = counts(Peek(shop))
    _one_line_error(_record(shop, "--session", "nope", "--retract"), "nope",
                    "no recorded outcome")
    _one_line_error(_record(shop, "--retract"), "--retract needs --session")
    _one_line_error(_record(shop, "--session", session, "--retract", "--edited", RIGHT),
                    "--retract")
    _one_line_error(_record(shop, "--session", session, "--correct"), "needs the outcome")
    assert counts(Peek(shop)) == before


def test_mcp_peek_record_corrects_and_retracts(shop: Path, home: Path) -> None:
    report = {"corpus": str(shop.resolve()), "question": PAST, "session": "mcp-task"}

    async def script() -> list[Any]:
        async with stdio_session(home) as session:
            return [await session.call_tool("peek_record", {**report, **extra}) for extra in (
                {"files_edited": [WRONG], "success": True},
                {"files_edited": [RIGHT], "success": True, "correct": True},
                {"retract": True, "files_edited": [RIGHT]}, {"retract": True},
                {"retract": True})]

    wrong, corrected, muddled, retracted, twice = asyncio.run(script())
    statuses = [(r.structured_content or {}).get("status") for r in (wrong, corrected, retracted)]
    assert statuses == ["applied", "applied", "retracted"]
    assert muddled.is_error and "retract needs a session and no outcome" in text_of(muddled)
    assert twice.is_error and "has no recorded outcome" in text_of(twice)
    trail = Peek(shop).corrections("mcp-task")
    assert [t.reason for t in trail] == ["corrected", "retracted"]


def _round_trip(root: Path, home: Path, target: str | Path) -> None:
    """Correct an outcome, downgrade to 0015 (outcomes kept), migrate back up and retract."""
    from alembic import command

    with Peek(root, home) as p:
        p.index()
        session = p.ask(STEPPED).session
        p.record(session=session, edited=["shop/ledger.py"], success=True)
        p.record(session=session, edited=[RIGHT], success=True, correct=True)
    db = open_database(target)
    run_alembic(db, command.downgrade, "0015")
    with db.read() as conn:
        assert "ranker_delta" not in set(conn.execute(text(
            "SELECT * FROM session_outcomes")).keys())
        assert conn.execute(text("SELECT edited FROM session_outcomes")).scalar() == (
            json.dumps([RIGHT]))
    db.close()
    open_database(target).close()  # opening migrates to the head revision
    with Peek(root, home) as p:
        assert p.corrections() == []  # the log went with the downgrade
        assert p.retract(session).status == "retracted"  # a pre-0016 outcome: no step kept
        assert p.corrections()[0].before["edited"] == [RIGHT]


def test_migration_0016_round_trips_on_sqlite(make_corpus: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    _round_trip(make_corpus(SHOP), home, home / "peek.db")


@pytest.mark.postgres
def test_migration_0016_round_trips_on_postgres(make_corpus: Any, tmp_path: Path, pg_url: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEEK_DATABASE_URL", pg_url)
    _round_trip(make_corpus(SHOP), tmp_path / "home", pg_url)


def test_two_corrections_at_once_leave_one_outcome_and_a_consistent_ranker(shop: Path) -> None:
    peek = Peek(shop)
    session = peek.ask(STEPPED).session
    initial = _taught(peek)["weights"]
    peek.record(session=session, edited=["shop/ledger.py"], success=True)
    procs = [subprocess.Popen([str(PEEK_BIN), "record", str(shop), "--session", session,
                               "--edited", path, "--success", "--correct"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for path in (RIGHT, "shop/report.py")]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert all(rc == 0 or (rc == 2 and "already has a recorded outcome" in err)
               for rc, err in results), results
    with peek.db.read() as conn:
        rows = conn.execute(text("SELECT edited, ranker_delta FROM session_outcomes")).all()
    assert len(rows) == 1
    step = json.loads(rows[0][1])
    taught = _taught(peek)
    assert taught["updates"] == 1
    expected = [w + step.get(n, 0.0) for n, w in zip(FEATURES, initial, strict=True)]
    assert taught["weights"] == pytest.approx(expected, abs=1e-5)
    assert (peek.corrections()[-1].after or {}).get("edited") == json.loads(rows[0][0])
