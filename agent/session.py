"""What one `ask` produces and keeps: budgets, the result, and the stored session."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, LargeBinary, String, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm import Session as OrmSession

from peek.contextmap.trajectory import Citation
from peek.db import Database
from peek.errors import PeekError
from peek.schema import Base


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


class AgentSessionRow(Base):
    """One asked question: its trajectory (the context-map contract) and how it ended."""

    __tablename__ = "agent_sessions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    corpus_id: Mapped[int] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"))
    question: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # running | done | stopped | failed
    stopped_by: Mapped[str | None] = mapped_column(String(32))
    trajectory: Mapped[str] = mapped_column(Text)  # JSON, the contextmap Trajectory shape
    result: Mapped[str | None] = mapped_column(Text)  # JSON, AskResult.to_dict()
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    steps: Mapped[int] = mapped_column(Integer, default=0)
    ranking: Mapped[bytes | None] = mapped_column(LargeBinary)  # zlib JSON: ranked candidates


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
               "status": "running", "stopped_by": None, "trajectory": json.dumps(
                   {"question": question, "steps": [], "answer": ""}),
               "result": None, "created_at": now, "updated_at": now, "steps": 0}
        with self.db.write() as conn:
            conn.execute(AgentSessionRow.__table__.insert(), row)  # type: ignore[attr-defined]

    def finish(self, result: AskResult) -> None:
        """Store the final (or partial) result and its trajectory."""
        status = "stopped" if result.stopped_by else "done"
        values = {"status": status, "stopped_by": result.stopped_by,
                  "trajectory": json.dumps(result.trajectory),
                  "result": json.dumps(result.to_dict()), "updated_at": time.time(),
                  "steps": result.steps}
        with self.db.write() as conn:
            conn.execute(
                update(AgentSessionRow).where(AgentSessionRow.id == result.session).values(**values)
            )

    def save(self, result: AskResult, question: str, model: str,
             ranking: bytes | None = None) -> None:
        """Store a session that finished in one go (the offline policy), in one write."""
        now = time.time()
        status = "stopped" if result.stopped_by else "done"
        row = {"id": result.session, "corpus_id": self.corpus_id, "question": question,
               "model": model, "status": status, "stopped_by": result.stopped_by,
               "trajectory": json.dumps(result.trajectory),
               "result": json.dumps(result.to_dict()), "created_at": now, "updated_at": now,
               "steps": result.steps, "ranking": ranking}
        with self.db.write() as conn:
            conn.execute(AgentSessionRow.__table__.insert(), row)  # type: ignore[attr-defined]

    def load(self, session: str) -> AgentSessionRow:
        """A stored session of this corpus, or a PeekError naming how to find one."""
        query = select(AgentSessionRow).where(
            AgentSessionRow.id == session, AgentSessionRow.corpus_id == self.corpus_id
        )
        with self.db.read() as conn, OrmSession(conn) as orm:  # an ORM object, not a bare Row
            row = orm.scalars(query).one_or_none()
            if row is not None:
                orm.expunge(row)
        if row is None:
            raise PeekError(f"no session {session!r} for this corpus",
                            "see the `session` field of `peek ask --json`")
        return row

    def trajectory(self, session: str) -> dict[str, Any]:
        """The stored trajectory of a session, as the context-map contract's dict."""
        return dict(json.loads(self.load(session).trajectory))
