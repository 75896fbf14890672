"""What one `ask` produces and keeps: budgets, the result, and the stored session."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from peek.contextmap.citation import Citation
from peek.db import Database
from peek.errors import PeekError
from peek.packed import pack_text, unpack_text


@dataclass(frozen=True, slots=True)
class Budgets:
    """Limits on one session; reaching one stops it cleanly with the best partial answer."""

    max_steps: int = 12
    max_tokens: int | None = None
    max_cost: float | None = None


@dataclass(slots=True)
class AskResult:
    """The `peek ask --json` contract, plus why the session stopped."""

    answer: str
    citations: list[Citation]
    steps: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    model: str
    session: str
    map_version: int
    stopped_by: str | None = None
    trajectory: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Exactly the documented JSON shape (with `stopped_by` added)."""
        return {
            "answer": self.answer,
            "citations": [asdict(c) for c in self.citations],
            "steps": self.steps,
            "tokens": {"input": self.input_tokens, "output": self.output_tokens},
            "cost_usd": self.cost_usd,
            "model": self.model,
            "session": self.session,
            "map_version": self.map_version,
            "stopped_by": self.stopped_by,
        }


@dataclass(frozen=True, slots=True)
class StoredSession:
    """One row of `agent_sessions` (the table is declared in `peek.agent.tables`)."""

    id: str
    corpus_id: int
    question: str
    model: str
    status: str  # running | done | stopped | failed
    stopped_by: str | None
    trajectory: str  # JSON, the contextmap Trajectory shape (stored packed, see `peek.packed`)
    result: str | None  # JSON, AskResult.to_dict() (stored packed)
    created_at: float
    updated_at: float
    steps: int
    ranking: bytes | None  # zlib JSON: ranked candidates


_COLUMNS = tuple(f.name for f in fields(StoredSession))
_INSERT = (f"INSERT INTO agent_sessions ({', '.join(_COLUMNS)}) "
           f"VALUES ({', '.join(':' + c for c in _COLUMNS)})")


def _packed(value: dict[str, Any]) -> bytes:
    """A trajectory or result as stored: packed JSON, a quarter of its text (read outputs and
    answers repeat the corpus's words)."""
    return pack_text(json.dumps(value))


def new_session_id() -> str:
    """A short random id that people can type (`peek ask --resume ID`)."""
    return uuid.uuid4().hex[:12]


class SessionStore:
    """Stored sessions of one corpus: created at the start of an ask, finished at its end."""

    def __init__(self, db: Database, corpus_id: int) -> None:
        self.db = db
        self.corpus_id = corpus_id

    def start(self, session: str, question: str, model: str) -> None:
        """Record a session as running, so a crash still leaves a trace."""
        now = time.time()
        row = {"id": session, "corpus_id": self.corpus_id, "question": question, "model": model,
               "status": "running", "stopped_by": None, "trajectory": _packed(
                   {"question": question, "steps": [], "answer": ""}),
               "result": None, "created_at": now, "updated_at": now, "steps": 0, "ranking": None}
        with self.db.raw_write() as conn:
            conn.execute(_INSERT, row)

    def finish(self, result: AskResult) -> None:
        """Store the final (or partial) result and its trajectory."""
        status = "stopped" if result.stopped_by else "done"
        values = {"status": status, "stopped_by": result.stopped_by,
                  "trajectory": _packed(result.trajectory),
                  "result": _packed(result.to_dict()), "updated_at": time.time(),
                  "steps": result.steps}
        with self.db.raw_write() as conn:
            conn.execute(
                "UPDATE agent_sessions SET status = :status, stopped_by = :stopped_by, "
                "trajectory = :trajectory, result = :result, updated_at = :updated_at, "
                "steps = :steps WHERE id = :id", {**values, "id": result.session})

    def save(self, result: AskResult, question: str, model: str,
             ranking: bytes | None = None) -> None:
        """Store a session that finished in one go (the offline policy), in one write."""
        now = time.time()
        status = "stopped" if result.stopped_by else "done"
        row = {"id": result.session, "corpus_id": self.corpus_id, "question": question,
               "model": model, "status": status, "stopped_by": result.stopped_by,
               "trajectory": _packed(result.trajectory),
               "result": _packed(result.to_dict()), "created_at": now, "updated_at": now,
               "steps": result.steps, "ranking": ranking}
        with self.db.raw_write() as conn:
            conn.execute(_INSERT, row)

    def load(self, session: str) -> StoredSession:
        """A stored session of this corpus, or a PeekError naming how to find one."""
        with self.db.query() as conn:
            row = conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM agent_sessions "
                "WHERE id = :id AND corpus_id = :c", {"id": session, "c": self.corpus_id}
            ).fetchone()
        if row is None:
            raise PeekError(f"no session {session!r} for this corpus",
                            "see the `session` field of `peek ask --json`")
        values = list(row)
        at = _COLUMNS.index("trajectory")
        values[at] = unpack_text(values[at])
        if values[at + 1] is not None:
            values[at + 1] = unpack_text(values[at + 1])
        return StoredSession(*values)

    def trajectory(self, session: str) -> dict[str, Any]:
        """The stored trajectory of a session, as the context-map contract's dict."""
        return dict(json.loads(self.load(session).trajectory))
