"""The SQLite store: engine with WAL and busy timeout, safe open, and migrations on open."""

from __future__ import annotations

import fcntl
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DatabaseError

from peek.errors import StoreError

# Every revision this peek knows, oldest first; tests check it against migrations/versions.
REVISIONS = ("0001", "0002", "0003", "0004", "0005")
HEAD_REVISION = REVISIONS[-1]
SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 30_000
_MOVE_ASIDE = "move it aside or set PEEK_HOME to another folder; peek never overwrites it"


class Database:
    """One peek store: reads in deferred transactions, writes in `BEGIN IMMEDIATE` ones."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.engine = _make_engine(path)
        self._writer = self.engine.execution_options(peek_write=True)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction that sees one consistent snapshot."""
        with _store_errors(self.path), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction that takes the write lock up front, so writers queue, not fail."""
        with _store_errors(self.path), self._writer.begin() as conn:
            yield conn

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive lock across processes for work longer than one transaction."""
        with _file_lock(self.path.with_suffix(f".{name}.lock")):
            yield

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()


def open_database(path: Path) -> Database:
    """Open (creating if needed) and migrate a store; refuse corrupt, foreign or newer files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    revision = _inspect(path)
    db = Database(path)
    try:
        if revision != HEAD_REVISION:
            _migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def _make_engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" event emits BEGIN itself
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("peek_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _check_header(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb") as fh:
        head = fh.read(len(SQLITE_MAGIC))
    if head != SQLITE_MAGIC:
        raise StoreError(f"{path} is not a SQLite database (corrupt or foreign file)", _MOVE_ASIDE)


def _inspect(path: Path) -> str | None:
    """The schema revision of an existing file, read without writing a byte to it."""
    _check_header(path)
    if not path.exists() or path.stat().st_size == 0:
        return None
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if "alembic_version" not in tables:
                if tables - {"sqlite_sequence"}:
                    message = f"{path} is a SQLite database but not a peek store"
                    raise StoreError(message, _MOVE_ASIDE)
                return None
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} cannot be read: {exc}", _MOVE_ASIDE) from exc
    return _known_revision(path, row[0] if row else None)


def _known_revision(path: Path, revision: str | None) -> str | None:
    if revision is not None and revision not in REVISIONS:
        raise StoreError(
            f"{path} has schema revision {revision}, unknown to this peek (newer?)",
            "upgrade peek, or set PEEK_HOME to another folder",
        )
    return revision


def _migrate(db: Database) -> None:
    """Upgrade to head under an exclusive file lock, so concurrent openers migrate once."""
    with _file_lock(db.path.with_suffix(".lock")):
        if _inspect(db.path) == HEAD_REVISION:
            return
        with db.engine.connect() as conn:
            _run_alembic(conn)
            conn.commit()


def _run_alembic(conn: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def _store_errors(path: Path) -> Iterator[None]:
    """Turn SQLite's corruption errors into one clear StoreError; let every other error through.

    Only a plain sqlite3.DatabaseError means an unreadable file: its subclasses (busy, integrity,
    programming errors) are not corruption, and calling them that would scare people.
    """
    try:
        yield
    except DatabaseError as exc:
        if type(exc.orig) is not sqlite3.DatabaseError:
            raise
        raise StoreError(f"{path} cannot be read: {exc.orig}", _MOVE_ASIDE) from exc
