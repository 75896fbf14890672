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
from dataclasses import dataclass
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


def _flag(value: Any) -> bool | None:
    """A stored boolean as Python's (SQLite keeps 0/1)."""
    return None if value is None else bool(value)


def save_outcome(conn: AnyConnection, corpus_id: int, outcome: PastOutcome,
                 source: str = "record") -> None:
    """Store an outcome and index its question (inside the caller's write transaction)."""
    raw = driver(conn)
    row_id = raw.execute(
        f"INSERT INTO session_outcomes (corpus_id, {_COLUMNS}, source) VALUES (:c, :session, "
        ":question, :edited, :success, :recorded_at, :summary, :source) RETURNING id",
        {"c": corpus_id, "session": outcome.session, "question": outcome.question,
         "edited": json.dumps(sorted(set(outcome.edited))), "success": outcome.success,
         "source": source, "recorded_at": outcome.recorded_at or time.time(),
         "summary": outcome.summary}).fetchone()[0]
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
