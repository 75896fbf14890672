"""Session outcomes: what people and host agents did after an answer, the signal that teaches.

An answer nobody confirmed is a hypothesis. What a session *led to* (the files edited, success or
failure) is evidence, and it is stored here once per session, with the question, in a per-corpus
FTS5 index, so that a new question can find the most similar past requests and what they edited.
A host that knows what the change did (a commit message, a one-paragraph summary) may report
it as the outcome's `summary`: it is indexed with the question, so a new question that words the
change as the summary did finds it even when it shares no word with the request.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from peek.db import driver
from peek.retrieval.lexical import create_fts, fts_add, fts_delete_row, fts_match, table_exists
from peek.text import expand_for_index, query_terms

if TYPE_CHECKING:
    from peek.db import AnyConnection

SIMILAR_POOL = 20


@dataclass(frozen=True, slots=True)
class PastOutcome:
    """A past request and what it led to."""

    session: str
    question: str
    edited: tuple[str, ...]
    success: bool | None
    recorded_at: float
    summary: str | None = None  # what the change did, in the reporter's words

    def same_as(self, edited: tuple[str, ...], success: bool | None) -> bool:
        """Whether recording this outcome again would change nothing."""
        return set(self.edited) == set(edited) and self.success == success

    def to_dict(self) -> dict[str, Any]:
        """JSON form (`peek outcomes --json`)."""
        return {**asdict(self), "edited": list(self.edited)}


def fts_name(corpus_id: int) -> str:
    """One FTS5 table of past questions per corpus, so BM25 statistics stay per corpus."""
    return f"outcomes_fts_{int(corpus_id)}"


def ensure_fts(conn: AnyConnection, corpus_id: int) -> None:
    """Create the corpus's outcome index on first use (same tokenizer as code search)."""
    create_fts(conn, fts_name(corpus_id), "question")


_COLUMNS = "session, question, edited, success, recorded_at, summary"


def _past(row: Any) -> PastOutcome:
    return PastOutcome(row[0], row[1], tuple(json.loads(row[2])), _flag(row[3]), row[4], row[5])


def outcome_document(question: str, summary: str | None) -> str:
    """The text a new question is matched against: the request and what the change did."""
    parts = [question] if not summary else [question, summary]
    return "\n".join(expand_for_index(p) for p in parts)


def stored_outcome(conn: AnyConnection, corpus_id: int, session: str) -> PastOutcome | None:
    """The outcome already recorded for a session, if any."""
    row = driver(conn).execute(
        f"SELECT {_COLUMNS} FROM session_outcomes WHERE corpus_id = :c AND session = :s",
        {"c": corpus_id, "s": session}).fetchone()
    return None if row is None else _past(row)


def recorded_outcomes(conn: AnyConnection, corpus_id: int, limit: int | None = None,
                      edited: str | None = None) -> list[PastOutcome]:
    """Recorded outcomes, newest first, optionally only those that edited one file: how a
    person finds the session whose outcome taught something wrong."""
    where = ("" if edited is None else
             " AND EXISTS (SELECT 1 FROM json_each(o.edited) j WHERE j.value = :p)")
    cap = "" if limit is None else " LIMIT :n"
    rows = driver(conn).execute(
        f"SELECT {_COLUMNS} FROM session_outcomes o WHERE o.corpus_id = :c{where} "
        f"ORDER BY o.id DESC{cap}", {"c": corpus_id, "p": edited, "n": limit})
    return [_past(r) for r in rows]


def _flag(value: Any) -> bool | None:
    """A stored boolean as Python's (SQLite keeps 0/1)."""
    return None if value is None else bool(value)


def save_outcome(conn: AnyConnection, corpus_id: int, outcome: PastOutcome,
                 source: str = "record", ranker_delta: dict[str, float] | None = None) -> None:
    """Store an outcome, the ranker step it taught (so a retraction can take it back) and
    index its question (inside the caller's write transaction)."""
    raw = driver(conn)
    row_id = raw.execute(
        f"INSERT INTO session_outcomes (corpus_id, {_COLUMNS}, source, ranker_delta) VALUES "
        "(:c, :session, :question, :edited, :success, :recorded_at, :summary, :source, :delta) "
        "RETURNING id",
        {"c": corpus_id, "session": outcome.session, "question": outcome.question,
         "edited": json.dumps(sorted(set(outcome.edited))), "success": outcome.success,
         "source": source, "recorded_at": outcome.recorded_at or time.time(),
         "summary": outcome.summary, "delta": _compact(ranker_delta)}).fetchone()[0]
    ensure_fts(conn, corpus_id)
    fts_add(conn, fts_name(corpus_id),
            [(row_id, None, outcome_document(outcome.question, outcome.summary))],
            column="question")


def amend_summary(conn: AnyConnection, corpus_id: int, session: str, summary: str) -> None:
    """Replace a recorded outcome's summary and index its document anew (nothing else of the
    outcome changes: its edits, verdict and what they taught stay as first applied)."""
    raw = driver(conn)
    row = raw.execute("SELECT id, question FROM session_outcomes WHERE corpus_id = :c AND "
                      "session = :s", {"c": corpus_id, "s": session}).fetchone()
    raw.execute("UPDATE session_outcomes SET summary = :m WHERE id = :i",
                {"m": summary, "i": row[0]})
    ensure_fts(conn, corpus_id)
    fts_delete_row(conn, fts_name(corpus_id), row[0])
    fts_add(conn, fts_name(corpus_id), [(row[0], None, outcome_document(row[1], summary))],
            column="question")


def _compact(data: dict[str, float] | None) -> str | None:
    return None if data is None else json.dumps(data, separators=(",", ":"))


def outcome_fields(outcome: PastOutcome) -> dict[str, Any]:
    """What an outcome said, as the correction log keeps it."""
    return {"question": outcome.question, "edited": list(outcome.edited),
            "success": outcome.success, "summary": outcome.summary}


def remove_outcome(conn: AnyConnection, corpus_id: int, session: str
                   ) -> tuple[PastOutcome, dict[str, float] | None] | None:
    """Delete a session's outcome and its indexed document; returns it with the ranker step it
    taught (None if it took none, or was recorded before steps were kept)."""
    raw = driver(conn)
    row = raw.execute(f"SELECT id, {_COLUMNS}, ranker_delta FROM session_outcomes WHERE "
                      "corpus_id = :c AND session = :s", {"c": corpus_id, "s": session}).fetchone()
    if row is None:
        return None
    raw.execute("DELETE FROM session_outcomes WHERE id = :i", {"i": row[0]})
    if table_exists(conn, fts_name(corpus_id)):
        fts_delete_row(conn, fts_name(corpus_id), row[0])
    delta = None if row[7] is None else {str(k): float(v) for k, v in json.loads(row[7]).items()}
    return _past(row[1:7]), delta


def log_correction(conn: AnyConnection, corpus_id: int, before: PastOutcome,
                   after: PastOutcome | None, reason: str) -> None:
    """One row of the audit trail: the outcome retracted and what (if anything) replaced it."""
    driver(conn).execute(
        "INSERT INTO outcome_corrections (corpus_id, session, before, after, reason, created_at) "
        "VALUES (:c, :s, :b, :a, :r, :t)",
        {"c": corpus_id, "s": before.session, "b": json.dumps(outcome_fields(before)),
         "a": None if after is None else json.dumps(outcome_fields(after)), "r": reason,
         "t": time.time()})


@dataclass(frozen=True, slots=True)
class OutcomeCorrection:
    """One entry of the audit trail: a withdrawn outcome and what replaced it (None: nothing)."""

    session: str
    before: dict[str, Any]  # {question, edited, success, summary}
    after: dict[str, Any] | None
    reason: str  # corrected | retracted
    at: float  # seconds since the epoch

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def corrections(conn: AnyConnection, corpus_id: int,
                session: str | None = None) -> list[OutcomeCorrection]:
    """The audit trail, oldest first (one session's, or the corpus's)."""
    only = "" if session is None else " AND session = :s"
    rows = driver(conn).execute(
        "SELECT session, before, after, reason, created_at FROM outcome_corrections WHERE "
        f"corpus_id = :c{only} ORDER BY id", {"c": corpus_id, "s": session})
    return [OutcomeCorrection(str(r[0]), json.loads(r[1]),
                              None if r[2] is None else json.loads(r[2]), str(r[3]), float(r[4]))
            for r in rows]


def similar_outcomes(conn: AnyConnection, corpus_id: int, question: str,
                     k: int = SIMILAR_POOL) -> list[tuple[PastOutcome, float]]:
    """The k past requests most similar to a question (BM25, higher is better), best first."""
    terms = query_terms(question)
    if not terms or not table_exists(conn, fts_name(corpus_id)):
        return []
    found = fts_match(conn, fts_name(corpus_id), terms, k)
    scores = {row_id: score for row_id, _, score in found}
    rows = {r[0]: r[1:] for r in driver(conn).execute(
        f"SELECT id, {_COLUMNS} FROM session_outcomes WHERE id IN "
        "(SELECT value FROM json_each(?))", (json.dumps(list(scores)),))}
    return [(_past(rows[i]), s) for i, s in scores.items() if i in rows]
