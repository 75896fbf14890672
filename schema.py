"""The tables of the peek store; migrations in `migrations/` create exactly these."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: sizes and nanosecond mtimes outgrow PostgreSQL's 32-bit INTEGER (SQLite's INTEGER is 64-bit)
BIG = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base shared by every module that stores rows."""


class Corpus(Base):
    """A folder peek indexes: a git repository or a folder of documents, keyed by its real path."""

    __tablename__ = "corpora"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    root: Mapped[str] = mapped_column(Text, unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    git_head: Mapped[str | None] = mapped_column(String(64))
    git_remote: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    indexed_at: Mapped[float | None] = mapped_column(Float)
    index_seconds: Mapped[float | None] = mapped_column(Float)


class File(Base):
    """One indexed file: its blob sha (as `git hash-object`) decides whether it is re-read."""

    __tablename__ = "files"
    __table_args__ = (UniqueConstraint("corpus_id", "path"), Index("ix_files_blob", "blob_sha"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    corpus_id: Mapped[int] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text)
    blob_sha: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(BIG)
    mtime_ns: Mapped[int] = mapped_column(BIG)
    language: Mapped[str] = mapped_column(String(32))
    line_count: Mapped[int] = mapped_column(Integer)
    decode_errors: Mapped[int] = mapped_column(Integer, default=0)
    imports: Mapped[str] = mapped_column(Text, default="")
    identifiers: Mapped[str] = mapped_column(Text, default="")


class SkippedFile(Base):
    """A file the index read and left out (binary, unreadable), keyed by stat: not re-read."""

    __tablename__ = "skipped_files"
    __table_args__ = (UniqueConstraint("corpus_id", "path"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    corpus_id: Mapped[int] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BIG)
    mtime_ns: Mapped[int] = mapped_column(BIG)
    reason: Mapped[str] = mapped_column(String(16))


class Chunk(Base):
    """A searchable span of a file: a definition, a document section or a window of lines."""

    __tablename__ = "chunks"
    __table_args__ = (Index("ix_chunks_file", "file_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"))
    start_line: Mapped[int] = mapped_column(Integer)
    end_line: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)


class Symbol(Base):
    """A definition (class, function, method, heading) with its line span, for find_symbol."""

    __tablename__ = "symbols"
    __table_args__ = (Index("ix_symbols_name", "name"), Index("ix_symbols_file", "file_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    qualname: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    start_line: Mapped[int] = mapped_column(Integer)
    end_line: Mapped[int] = mapped_column(Integer)
