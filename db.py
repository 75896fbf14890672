"""The store: SQLite by default (WAL, busy timeout, safe open), PostgreSQL when a URL says so.

SQLAlchemy (~0.2 s to import) loads only when a caller asks for `read()`/`write()`; the paths of
short-lived processes (`peek search`, `peek status`, `peek index` with nothing to do, `peek ask`,
`peek record` and its `--retract`/`--correct`, the map's change sets) use `query()`/`raw_write()`,
plain driver connections with the same transaction rules. On
PostgreSQL those are psycopg connections that take sqlite3's SQL dialect (see `peek.postgres`),
so one SQL text serves both backends; migrations run on both.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Sized
from contextlib import closing, contextmanager, suppress
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from peek import postgres
from peek.errors import StoreError
from peek.postgres import is_postgres_url, redact

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    #: what the raw-SQL helpers accept: a SQLAlchemy connection or a plain driver one
    AnyConnection = Connection | sqlite3.Connection | postgres.PgConnection

# Every revision this peek knows, oldest first; tests check it against migrations/versions.
REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0012", "0008", "0013",
             "0009", "0011", "0014", "0015", "0016", "0017")
HEAD_REVISION = REVISIONS[-1]
SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 30_000
_MOVE_ASIDE = "move it aside or set PEEK_HOME to another folder; peek never overwrites it"


class Database:
    """One peek store: reads in snapshot transactions, writers queue behind one write lock."""

    def __init__(self, target: Path | str) -> None:
        #: the SQLite file, None on PostgreSQL
        self.path: Path | None = None
        #: the SQLAlchemy URL (with credentials: never print it, print `location`)
        self.url: str
        if isinstance(target, str) and is_postgres_url(target):
            self.url = target
        else:
            self.path = sqlite_path(target) if isinstance(target, str) else target
            self.url = f"sqlite:///{self.path}"

    @property
    def backend(self) -> str:
        """'sqlite' or 'postgresql'."""
        return "sqlite" if self.path is not None else "postgresql"

    @property
    def location(self) -> str:
        """Where the store is, safe to print: the file, or the URL without its password."""
        return str(self.path) if self.path is not None else redact(self.url)

    @cached_property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, made (and SQLAlchemy imported) on first use."""
        return _make_engine(self.path) if self.path is not None else _make_pg_engine(self.url)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction that sees one consistent snapshot."""
        with _store_errors(self.location), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction that takes the write lock up front, so writers queue, not fail."""
        writer = self.engine.execution_options(peek_write=True, **_WRITE_OPTIONS[self.backend])
        with _store_errors(self.location), writer.begin() as conn:
            yield conn

    @contextmanager
    def query(self) -> Iterator[sqlite3.Connection]:
        """A read snapshot on a plain driver connection (no SQLAlchemy import).

        On PostgreSQL the connection is a `PgConnection`, which takes the same calls and SQL.
        """
        if self.path is None:
            with postgres.read(self.url) as pg:
                yield cast("sqlite3.Connection", pg)
            return
        with _store_errors(self.location), closing(_connect(self.path)) as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

    @contextmanager
    def raw_write(self) -> Iterator[sqlite3.Connection]:
        """A write on a plain driver connection, after the write lock, committed on success."""
        if self.path is None:
            with postgres.write(self.url) as pg:
                yield cast("sqlite3.Connection", pg)
            return
        with _store_errors(self.location), closing(_connect(self.path)) as conn:
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
        """An exclusive lock across processes (and machines, on PostgreSQL) for work longer than
        one transaction; a crashed holder's lock is released with its process or connection."""
        if self.path is None:
            with postgres.session_lock(self.url, name):
                yield
            return
        with _file_lock(self.path.with_suffix(f".{name}.lock")):
            yield

    def vacuum(self, tables: list[str]) -> None:
        """After a bulk write: VACUUM (ANALYZE) these PostgreSQL tables (nothing on SQLite)."""
        if self.path is None:
            postgres.vacuum(self.url, tables)

    def close(self) -> None:
        """Release pooled connections (nothing to do when SQLAlchemy was never used)."""
        if self.path is None:
            postgres.close_idle(self.url)
        if "engine" in self.__dict__:
            self.engine.dispose()


def open_database(target: Path | str) -> Database:
    """Open (creating if needed) and migrate a store; refuse corrupt, foreign or newer ones.

    `target` is a SQLite file, or a SQLAlchemy URL (`sqlite:///FILE`, `postgresql+psycopg://`).
    """
    own_home = not isinstance(target, str)  # a URL names the user's folder, not peek's home
    if isinstance(target, str):
        if is_postgres_url(target):
            return _open_postgres(target)
        target = sqlite_path(target)
    path = target
    ensure_home(path.parent, ignored=own_home)
    revision = _inspect(path)
    _make_private(path)
    return _migrated(Database(path), lambda: revision)


def _open_postgres(url: str) -> Database:
    db = Database(url)  # its location is the redacted URL: errors never show credentials
    return _migrated(db, lambda: _known_revision(db.location, postgres.inspect(url)))


def _migrated(db: Database, revision: Callable[[], str | None]) -> Database:
    """The store brought to the head revision; closed again when that fails (either backend)."""
    try:
        if revision() != HEAD_REVISION:
            _migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def sqlite_path(url: str) -> Path:
    """The file of a `sqlite:///FILE` URL (or a plain path), or a ConfigError for other URLs."""
    from peek.errors import ConfigError

    if "://" not in url:
        return Path(url).expanduser()
    if not url.startswith("sqlite:///") or len(url) == len("sqlite:///"):
        raise ConfigError(f"unsupported database URL {redact(url)}",
                          "use sqlite:///FILE or postgresql+psycopg://USER@HOST/DB")
    return Path(url[len("sqlite:///"):]).expanduser()


def driver(conn: AnyConnection) -> sqlite3.Connection:
    """The driver connection under a SQLAlchemy one (same transaction), or the one given.

    On PostgreSQL it is a `PgConnection` around psycopg's (sqlite3's calls and SQL dialect).
    """
    if isinstance(conn, sqlite3.Connection | postgres.PgConnection):
        return cast("sqlite3.Connection", conn)
    raw = conn.connection.driver_connection
    if isinstance(raw, sqlite3.Connection):
        return raw
    return cast("sqlite3.Connection", postgres.PgConnection(cast(Any, raw)))


def marks(values: Sized) -> str:
    """One `?` per value of a non-empty IN list (`x IN (?, ?)`), as SQLAlchemy expands one."""
    return ", ".join("?" * len(values))


def is_postgres(conn: AnyConnection) -> bool:
    """Whether a connection (SQLAlchemy, sqlite3 or PgConnection) talks to PostgreSQL."""
    if isinstance(conn, sqlite3.Connection):
        return False
    if isinstance(conn, postgres.PgConnection):
        return True
    return bool(conn.dialect.name == "postgresql")


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


#: what a home peek creates holds in its `.gitignore`: everything in it is peek's own
HOME_GITIGNORE = "# peek's store: not part of any corpus or repository\n*\n"


def ensure_home(home: Path, ignored: bool = True) -> None:
    """Create the home folder (0700) or refuse with one line when it cannot hold a store;
    a home peek creates is `ignored` (its own `.gitignore`) unless a URL chose the folder."""
    hint = "set PEEK_HOME or --home to a writable folder"
    created = not home.exists()
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
    if created and ignored:
        _ignore_everything(home)


def _ignore_everything(home: Path) -> None:
    """A home peek made ignores itself, so a home inside a corpus (or a git work tree) is never
    indexed, searched or committed: peek and git both honour a folder's `.gitignore`."""
    with suppress(OSError):
        (home / ".gitignore").write_text(HOME_GITIGNORE, encoding="utf-8")


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


#: writers on PostgreSQL read committed rows after their lock wait (a REPEATABLE READ snapshot
#: would be taken before the wait and miss the previous writer's commit)
_WRITE_OPTIONS: dict[str, dict[str, Any]] = {
    "sqlite": {}, "postgresql": {"isolation_level": "READ COMMITTED"}}


def _make_pg_engine(url: str) -> Engine:
    """PostgreSQL through psycopg: reads are REPEATABLE READ, writers take the write lock."""
    from sqlalchemy import create_engine, event

    # the isolation level goes out with psycopg's own BEGIN: no statement of its own
    engine = create_engine(postgres.sqlalchemy_url(url), hide_parameters=True,
                           isolation_level="REPEATABLE READ")

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _dialect(_conn: Connection, _cursor: Any, statement: str, parameters: Any,
                 _context: Any, executemany: bool) -> tuple[str, Any]:
        sql, lists = postgres.translate_pyformat(statement)
        if executemany:
            return sql, [postgres.adapt_params(lists, p) for p in parameters]
        return sql, postgres.adapt_params(lists, parameters)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("peek_write", False):
            postgres.take_write_lock(conn.exec_driver_sql)

    return engine


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
    """Refuse a file that is not SQLite's, by its first bytes; only called once SQLite failed
    to read it: closing a plain handle on a store drops every SQLite lock this process holds
    on it (POSIX locks), and another process could then delete the WAL from under them."""
    with path.open("rb") as fh:
        head = fh.read(len(SQLITE_MAGIC))
    if head != SQLITE_MAGIC:
        raise StoreError(f"{path} is not a SQLite database (corrupt or foreign file)", _MOVE_ASIDE)


def _inspect(path: Path) -> str | None:
    """The schema revision of an existing file, read without writing a byte to it."""
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
        _check_header(path)
        raise StoreError(f"{path} cannot be read: {exc}", _MOVE_ASIDE) from exc
    return _known_revision(path, row[0] if row else None)


def _known_revision(path: Path | str, revision: str | None) -> str | None:
    if revision is not None and revision not in REVISIONS:
        raise StoreError(
            f"{path} has schema revision {revision}, unknown to this peek (newer?)",
            "upgrade peek, or set PEEK_HOME to another folder",
        )
    return revision


def _migrate(db: Database) -> None:
    """Upgrade to head under an exclusive lock, so concurrent openers migrate once."""
    if db.path is None:
        with postgres.session_lock(db.url, "migrate"):
            if postgres.inspect(db.url) != HEAD_REVISION:
                _upgrade(db)
                postgres.vacuum_schema(db.url)  # rebuilt indexes: statistics, index-only scans
        return
    with _file_lock(db.path.with_suffix(".lock")):
        if _inspect(db.path) != HEAD_REVISION:
            _upgrade(db)


def migration_state(db: Database) -> dict[str, Any]:
    """The store's revision against this peek's head, for `peek doctor`."""
    revision = postgres.inspect(db.url) if db.path is None else _inspect(db.path)
    return {"revision": revision, "head": HEAD_REVISION, "current": revision == HEAD_REVISION}


def _upgrade(db: Database) -> None:
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
    """An OS lock on a side file (flock or LockFileEx via `filelock`): a dead holder's is freed."""
    from filelock import FileLock

    with FileLock(path, mode=0o600):
        yield


@contextmanager
def _store_errors(path: Path | str) -> Iterator[None]:
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
