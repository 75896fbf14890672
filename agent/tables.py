"""The stored-session table; `peek.agent.session` reads and writes it with plain SQL."""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from peek.schema import Base


class AgentSessionRow(Base):
    """One asked question: its trajectory (the context-map contract) and how it ended."""

    __tablename__ = "agent_sessions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    corpus_id: Mapped[int] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"))
    question: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # running | done | stopped | failed
    stopped_by: Mapped[str | None] = mapped_column(String(32))
    trajectory: Mapped[bytes] = mapped_column(LargeBinary)  # packed JSON (peek.packed): the
    # contextmap Trajectory shape
    result: Mapped[bytes | None] = mapped_column(LargeBinary)  # packed JSON, AskResult.to_dict()
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    steps: Mapped[int] = mapped_column(Integer, default=0)


class AgentRankingRow(Base):
    """The candidates an ask scored (what `record` teaches the ranker from), apart from the
    session row: together they were ~2.2 KB, one row to a 4 KB page; apart, both pack tight."""

    __tablename__ = "agent_rankings"
    session_id: Mapped[str] = mapped_column(
        ForeignKey("agent_sessions.id", ondelete="CASCADE"), primary_key=True)
    ranking: Mapped[bytes] = mapped_column(LargeBinary)  # zlib JSON: ranked candidates
