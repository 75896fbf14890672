"""The SQLite store: engine with WAL and busy timeout, safe open, and migrations on open.

SQLAlchemy (~0.2 s to import) loads only when a caller asks for `read()`/`write()`; the hot read
paths of short-lived processes (`peek search`, `peek status`, `peek index` with nothing to do)
use `query()`/`raw_write()`, plain sqlite3 connections with the same pragmas.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peek.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    #: what the raw-SQL helpers accept: a SQLAlchemy connection or a plain sqlite3 one
    AnyConnection = Connection | sqlite3.Connection

# Every revision this peek knows, oldest first; tests check it against migrations/versions.
REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0012", "0008")
HEAD_REVISION = REVISIONS[-1]
SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 30_000
_MOVE_ASIDE = "move it aside or set PEEK_HOME to another folder; peek never overwrites it"


class Database:
    """One peek store: reads in deferred transactions, writes in `BEGIN IMMEDIATE` ones."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @cached_property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, made (and SQLAlchemy imported) on first use."""
        return _make_engine(self.path)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction that sees one consistent snapshot."""
        with _store_errors(self.path), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction that takes the write lock up front, so writers queue, not fail."""
        writer = self.engine.execution_options(peek_write=True)
        with _store_errors(self.path), writer.begin() as conn:
            yield conn

    @contextmanager
    def query(self) -> Iterator[sqlite3.Connection]:
        """A read snapshot on a plain sqlite3 connection (no SQLAlchemy import)."""
        with _store_errors(self.path), closing(_connect(self.path)) as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

    @contextmanager
    def raw_write(self) -> Iterator[sqlite3.Connection]:
        """A `BEGIN IMMEDIATE` write on a plain sqlite3 connection, committed on success."""
        with _store_errors(self.path), closing(_connect(self.path)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive lock across processes for work longer than one transaction."""
        with _file_lock(self.path.with_suffix(f".{name}.lock")):
            yield

    def close(self) -> None:
        """Release pooled connections (nothing to do when SQLAlchemy was never used)."""
        if "engine" in self.__dict__:
            self.engine.dispose()


def open_database(path: Path) -> Database:
    """Open (creating if needed) and migrate a store; refuse corrupt, foreign or newer files."""
    ensure_home(path.parent)
    revision = _inspect(path)
    _make_private(path)
    db = Database(path)
    try:
        if revision != HEAD_REVISION:
            _migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def driver(conn: AnyConnection) -> sqlite3.Connection:
    """The sqlite3 connection under a SQLAlchemy one (same transaction), or the one given."""
    if isinstance(conn, sqlite3.Connection):
        return conn
    raw = conn.connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    return raw


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)
    _pragmas(conn)
    return conn


def _pragmas(dbapi_conn: sqlite3.Connection) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA foreign_keys = ON")
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.close()


def ensure_home(home: Path) -> None:
    """Create the home folder (0700) or refuse with one line when it cannot hold a store."""
    hint = "set PEEK_HOME or --home to a writable folder"
    try:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
    except FileExistsError as exc:
        raise StoreError(f"peek home {home} is not a folder", hint) from exc
    except OSError as exc:
        raise StoreError(f"cannot create peek home {home} ({exc.strerror})", hint) from exc
    if not home.is_dir():
        raise StoreError(f"peek home {home} is not a folder", hint)
    if not os.access(home, os.W_OK | os.X_OK):
        raise StoreError(f"peek home {home} is not writable (peek needs it for its store)", hint)


def _make_private(path: Path) -> None:
    """Create the store file readable by its owner only (SQLite gives -wal/-shm the same mode)."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        with suppress(OSError):
            if path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
                os.chmod(path, 0o600)
        return
    except OSError as exc:
        raise StoreError(f"cannot create {path} ({exc.strerror})", "check the home folder") from exc
    os.close(fd)


def _make_engine(path: Path) -> Engine:
    from sqlalchemy import create_engine, event

    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" event emits BEGIN itself
        _pragmas(dbapi_conn)

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
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _store_errors(path: Path) -> Iterator[None]:
    """Turn SQLite's corruption errors into one clear StoreError; let every other error through.

    Only a plain sqlite3.DatabaseError means an unreadable file: its subclasses (busy, integrity,
    programming errors) are not corruption, and calling them that would scare people.
    """
    try:
        yield
    except Exception as exc:
        orig = getattr(exc, "orig", exc)  # SQLAlchemy wraps the sqlite3 error in .orig
        if type(orig) is not sqlite3.DatabaseError:
            raise
        raise StoreError(f"{path} cannot be read: {orig}", _MOVE_ASIDE) from exc
