"""The memory tables (and session outcomes); migrations create exactly these."""

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
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from peek.schema import Base


def _corpus_fk(primary_key: bool = False) -> Mapped[int]:
    return mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"), primary_key=primary_key)


class MemoryStateRow(Base):
    """Per corpus: the embedder and its fitted weights, a version that changes on every write."""

    __tablename__ = "memory_state"
    corpus_id: Mapped[int] = _corpus_fk(primary_key=True)
    embedder: Mapped[str] = mapped_column(String(16))
    dim: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    fitted_n: Mapped[int] = mapped_column(Integer)
    embedder_state: Mapped[bytes | None] = mapped_column(LargeBinary)
    clustered_windows: Mapped[int] = mapped_column(Integer)
    next_node: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[float] = mapped_column(Float)
    #: peek.text.ANALYSIS of the stored terms; stale ones are re-derived (pipeline.reanalyze)
    analysis: Mapped[int] = mapped_column(Integer, server_default="1")


class MemoryTurnRow(Base):
    """One remembered unit: a conversation turn, a document paragraph or a code session."""

    __tablename__ = "memory_turns"
    __table_args__ = (
        Index("ix_memory_turns_corpus_turn", "corpus_id", "turn_id", unique=True),
        Index("ix_memory_turns_corpus_seq", "corpus_id", "seq"),
        Index("ix_memory_turns_corpus_session", "corpus_id", "session"),
        Index("ix_memory_turns_corpus_speaker", "corpus_id", "source", "speaker"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    corpus_id: Mapped[int] = _corpus_fk()
    turn_id: Mapped[str] = mapped_column(Text)
    seq: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(Text)
    time: Mapped[str | None] = mapped_column(Text)
    session: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    vector: Mapped[bytes | None] = mapped_column(LargeBinary)
    stale: Mapped[bool] = mapped_column(Boolean)
    window: Mapped[int] = mapped_column(Integer)
    #: text, terms and {path: blob sha} of the code it cites, packed (`turnbody.pack_turn`)
    body: Mapped[bytes] = mapped_column(LargeBinary)


class MemoryWindowRow(Base):
    """A window of consecutive turns of one session: the unit that is clustered into episodes."""

    __tablename__ = "memory_windows"
    corpus_id: Mapped[int] = _corpus_fk(primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_seq: Mapped[int] = mapped_column(Integer)
    last_seq: Mapped[int] = mapped_column(Integer)
    session: Mapped[str | None] = mapped_column(Text)
    vector: Mapped[bytes | None] = mapped_column(LargeBinary)  # float32, deflated
    episode: Mapped[int | None] = mapped_column(Integer)


class MemoryEpisodeRow(Base):
    """An episode: its centroid, medoid windows and the byte-stable prompt block built from them."""

    __tablename__ = "memory_episodes"
    corpus_id: Mapped[int] = _corpus_fk(primary_key=True)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    centroid: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    medoids: Mapped[str] = mapped_column(Text)  # JSON [window idx], chronological
    prefix: Mapped[str] = mapped_column(Text)
    prefix_sha256: Mapped[str] = mapped_column(String(64))
    tokens: Mapped[int] = mapped_column(Integer)


class MemoryNodeRow(Base):
    """A GSW node (entity, verb phrase, space or time) as packed JSON (`peek.packed`), with its
    name key and vector; `cites` says whether its evidence names a file's blob."""

    __tablename__ = "memory_nodes"
    __table_args__ = (Index("ix_memory_nodes_corpus_norm", "corpus_id", "norm"),)
    corpus_id: Mapped[int] = _corpus_fk(primary_key=True)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text)
    norm: Mapped[str] = mapped_column(Text)  # store.key_digest of the exact-match key
    data: Mapped[bytes] = mapped_column(LargeBinary)
    vector: Mapped[bytes | None] = mapped_column(LargeBinary)
    seq: Mapped[int] = mapped_column(Integer)
    stale: Mapped[bool] = mapped_column(Boolean)
    cites: Mapped[bool] = mapped_column(Boolean, default=False)
    entity_kind: Mapped[str | None] = mapped_column(String(16))  # an entity's kind (file, ...)
    #: a verb's document in the contentless SQLite verb index, packed (`fts.index_verbs`)
    doc: Mapped[bytes | None] = mapped_column(LargeBinary)


class MemoryEdgeRow(Base):
    """A verb's answer that names a node (entity, place, time): the indexed form of the edges
    inside a verb's JSON, so "verbs about this entity" is a look-up, not a scan of every verb."""

    __tablename__ = "memory_edges"
    # SQLite: WITHOUT ROWID, so the table is its primary key (no second copy of it in an
    # autoindex) and a verb's rewritten edges land where the old ones were; open edges are
    # rare, so only they are indexed for "open verbs about these entities".
    __table_args__ = (Index("ix_memory_edges_open", "corpus_id", "node_id", "open", "verb_id",
                            sqlite_where=text("open = TRUE"),
                            postgresql_where=text("open = TRUE")),
                      Index("ix_memory_edges_node_seq", "corpus_id", "node_id", "seq", "verb_id"),
                      {"sqlite_with_rowid": False})
    corpus_id: Mapped[int] = _corpus_fk(primary_key=True)
    verb_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    open: Mapped[bool] = mapped_column(Boolean)  # the verb still has an unanswered question
    seq: Mapped[int] = mapped_column(Integer)


class OutcomeRow(Base):
    """One recorded session outcome; (corpus, session) is unique, so recording is idempotent."""

    __tablename__ = "session_outcomes"
    __table_args__ = (UniqueConstraint("corpus_id", "session"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    corpus_id: Mapped[int] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"))
    session: Mapped[str] = mapped_column(String(64))
    question: Mapped[str] = mapped_column(Text)
    edited: Mapped[str] = mapped_column(Text)  # JSON list of corpus paths
    success: Mapped[bool | None] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(16))  # record | trajectory | mcp
    recorded_at: Mapped[float] = mapped_column(Float)
    summary: Mapped[str | None] = mapped_column(Text)  # what the change did (commit message)
    ranker_delta: Mapped[str | None] = mapped_column(Text)  # JSON {feature: step} it taught


class OutcomeCorrectionRow(Base):
    """The audit trail of retracted and corrected outcomes: what each said, what replaced it."""

    __tablename__ = "outcome_corrections"
    __table_args__ = (Index("ix_outcome_corrections_corpus_session", "corpus_id", "session"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    corpus_id: Mapped[int] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"))
    session: Mapped[str] = mapped_column(String(64))
    before: Mapped[str] = mapped_column(Text)  # JSON {edited, success, summary}
    after: Mapped[str | None] = mapped_column(Text)  # the same, or null for a retraction
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class MemoryForgottenRow(Base):
    """One forgotten turn (`peek memory forget`): which, when and why, and a sha256 of its
    text (never the text itself; None when the stored text could not be read)."""

    __tablename__ = "memory_forgotten"
    __table_args__ = (Index("ix_memory_forgotten_corpus_turn", "corpus_id", "turn_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    corpus_id: Mapped[int] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"))
    turn_id: Mapped[str] = mapped_column(Text)
    session: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    text_sha256: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    forgotten_at: Mapped[float] = mapped_column(Float)
