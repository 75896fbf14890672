"""The context map's tables; migration 0002 creates exactly these."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from peek.schema import Base


class MapStateRow(Base):
    """One row per corpus that has a map: version, budget B, evolve steps m, id counters."""

    __tablename__ = "map_state"
    corpus_id: Mapped[int] = mapped_column(
        ForeignKey("corpora.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer)
    budget_tokens: Mapped[int] = mapped_column(Integer)
    evolve_steps: Mapped[int | None] = mapped_column(Integer)
    updates: Mapped[int] = mapped_column(Integer)
    frozen: Mapped[bool] = mapped_column(Boolean)
    seeded: Mapped[bool] = mapped_column(Boolean)
    next_ids: Mapped[str] = mapped_column(Text)  # JSON {"cr": 7, ...}
    updated_at: Mapped[float] = mapped_column(Float)


class MapEntryRow(Base):
    """A live map entry; removed entries live on only in the edit log (for diff and rollback)."""

    __tablename__ = "map_entries"
    corpus_id: Mapped[int] = mapped_column(
        ForeignKey("corpora.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    section: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    helpful: Mapped[int] = mapped_column(Integer)
    harmful: Mapped[int] = mapped_column(Integer)
    stale: Mapped[int] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer)
    created_step: Mapped[int] = mapped_column(Integer)
    updated_step: Mapped[int] = mapped_column(Integer)
    pinned: Mapped[bool] = mapped_column(Boolean)
    outdated: Mapped[bool] = mapped_column(Boolean)
    anchors: Mapped[str] = mapped_column(Text)  # JSON [{path, start_line, end_line, blob_sha}]


class MapEditRow(Base):
    """One change to one entry (or to the map's state); all edits of a change share a version."""

    __tablename__ = "map_edits"
    __table_args__ = (Index("ix_map_edits_corpus_version", "corpus_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    corpus_id: Mapped[int] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(16))
    entry_id: Mapped[str | None] = mapped_column(String(16))
    before: Mapped[bytes | None] = mapped_column(LargeBinary)  # packed JSON (peek.packed):
    after: Mapped[bytes | None] = mapped_column(LargeBinary)  # full entry, or changed fields
    session: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class MapSessionRow(Base):
    """A recorded trajectory (zlib-compressed JSON) and what the policy did with it."""

    __tablename__ = "map_sessions"
    __table_args__ = (Index("ix_map_sessions_corpus_session", "corpus_id", "session"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    corpus_id: Mapped[int] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"))
    session: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    question: Mapped[str] = mapped_column(Text)
    trajectory: Mapped[bytes] = mapped_column(LargeBinary)
    diagnosis: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
