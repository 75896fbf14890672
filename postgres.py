"""PostgreSQL under peek's raw-SQL helpers: a psycopg connection that speaks sqlite3's dialect.

peek's hot paths write plain SQL with sqlite3's `?` and `:name` placeholders through
`Database.query()`/`raw_write()`/`driver()`. On PostgreSQL those hand out a `PgConnection`:
the same `execute`/`executemany`/`fetch*` calls, with the placeholders (and `json_each` lists)
translated once per statement, so one SQL text serves both backends. psycopg loads only here.

Isolation (issue 14): every write transaction first takes one transaction-level advisory lock
(`pg_advisory_xact_lock`), so writers queue exactly as SQLite's `BEGIN IMMEDIATE` makes them
queue, and a read-modify-write of the map or memory can never lose another machine's update.
Reads are REPEATABLE READ snapshots, as SQLite's deferred transactions are. Longer work (an
index run, seeding a map) holds a session-level advisory lock on its own connection, which the
server releases when the holder's connection ends, a `kill -9` included.
"""

from __future__ import annotations

import os
import re
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from peek.errors import StoreError

if TYPE_CHECKING:
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver

#: the first key of every advisory lock peek takes (the second names the lock)
LOCK_SPACE = 0x7065656B  # "peek"
WRITE_LOCK = "write"
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|::|\x00?(?:\?|:[A-Za-z_]\w*)|%|"
                     r"\bwindow\b")
_INSTALL_HINT = "install the postgres extra: pip install 'peek[postgres]'"


def is_postgres_url(url: str) -> bool:
    """Whether a SQLAlchemy URL names PostgreSQL (any driver; peek uses psycopg)."""
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def redact(url: str) -> str:
    """The URL with its password replaced by ***, for every message and log line."""
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:
        return "<unparsable database URL>"
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    parts = parts._replace(query=query)
    if has_password:
        host = parts.netloc.rsplit("@", 1)[1]
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
    return urlunsplit(parts)


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL as libpq takes it (no `+driver`)."""
    scheme, rest = url.split(":", 1)
    return "postgresql:" + rest if "+" in scheme or scheme == "postgres" else url


def sqlalchemy_url(url: str) -> str:
    """The URL with the psycopg (3) driver named, whatever driver the user wrote."""
    return "postgresql+psycopg:" + url.split(":", 1)[1]


#: `X IN (SELECT value FROM json_each(P))`, peek's list parameter on SQLite: `X = ANY(list)` here
_IN_JSON = re.compile(r"(NOT\s+)?IN\s*\(\s*SELECT\s+value\s+FROM\s+json_each\("
                      r"\s*(\?|:\w+|%\(\w+\)s)\s*\)\s*\)", re.IGNORECASE)
_JSON_EACH = re.compile(r"json_each\(([^()]*)\)")
_LIST = "\x00"


@lru_cache(maxsize=512)
def translate(sql: str) -> tuple[str, tuple[int | str, ...]]:
    """sqlite3-style SQL as psycopg takes it, and the JSON-list parameters to pass as arrays.

    `?` -> %s, `:name` -> %(name)s, `%` -> %%; `X IN (SELECT value FROM json_each(P))` ->
    `X = ANY(P)` (NOT IN: `<> ALL`; P then goes as an array), other `json_each(E)` -> the rows
    of E as JSON, `instr(` -> `strpos(`, `LIMIT -1` -> `LIMIT ALL`, the column `window` quoted.
    """
    sql = _dialect(_IN_JSON.sub(lambda m: f"{_any(m)}({_LIST}{m.group(2)})", sql))
    lists: list[int | str] = []
    position = 0

    def swap(match: re.Match[str]) -> str:
        nonlocal position
        token = match.group(0)
        listed = token.startswith(_LIST)
        token = token.removeprefix(_LIST)
        if token == "%":
            return "%%"
        if token == "::":
            return token
        if token == "window":  # memory_turns.window: a reserved word in PostgreSQL
            return '"window"'
        if token.startswith(("'", '"')):
            return token.replace("%", "%%")  # psycopg reads placeholders inside literals too
        key: int | str = position if token == "?" else token[1:]
        if token == "?":
            position += 1
        if listed:
            lists.append(key)
        return "%s" if token == "?" else f"%({token[1:]})s"

    return _TOKENS.sub(swap, sql), tuple(lists)


def _any(match: re.Match[str]) -> str:
    return "<> ALL" if match.group(1) else "= ANY"


def _dialect(sql: str) -> str:
    sql = _JSON_EACH.sub(r"json_array_elements_text(CAST(\1 AS JSON))", sql)
    return sql.replace("instr(", "strpos(").replace("LIMIT -1", "LIMIT ALL")


def adapt_params(lists: tuple[int | str, ...], params: Any) -> Any:
    """Parameters with the JSON lists that `translate` turned into arrays decoded."""
    if not lists or params is None:
        return params
    import json

    if isinstance(params, dict):
        return {k: json.loads(v) if k in lists else v for k, v in params.items()}
    return [json.loads(v) if i in lists else v for i, v in enumerate(params)]


@lru_cache(maxsize=512)
def translate_pyformat(sql: str) -> tuple[str, tuple[int | str, ...]]:
    """SQLAlchemy's already-%(name)s SQL: only the json_each and instr rewrites."""
    names: list[int | str] = []

    def listed(match: re.Match[str]) -> str:
        names.append(match.group(2)[2:-2])
        return f"{_any(match)}({match.group(2)})"

    return _dialect(_IN_JSON.sub(listed, sql)), tuple(names)


def lock_key(name: str) -> int:
    """The second advisory-lock key of a named lock (a stable 31-bit hash)."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


class PgConnection:
    """A psycopg connection behind sqlite3's calling conventions (see the module docstring).

    With `begin`, the transaction starts with the first statement: both go to the server in one
    pipeline, so a transaction costs no round trip of its own.
    """

    def __init__(self, conn: psycopg.Connection[Any], begin: str | None = None) -> None:
        self.raw = conn
        self._begin = begin

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        """Run one statement; the cursor iterates and fetches like sqlite3's."""
        query, lists = translate(sql)
        args = adapt_params(lists, params) or None
        if self._begin is None:
            return self.raw.execute(query, args)  # type: ignore[arg-type]
        begin, self._begin = self._begin, None
        with self.raw.pipeline():
            self.raw.execute(begin.encode())
            cur = self.raw.execute(query, args)  # type: ignore[arg-type]
        return cur

    def executemany(self, sql: str, rows: Sequence[Any] | Iterator[Any]) -> Any:
        """Run one statement for each parameter row (psycopg pipelines them)."""
        rows = list(rows)
        self.begin()
        cur = self.raw.cursor()
        if rows:
            query, lists = translate(sql)
            cur.executemany(query, [adapt_params(lists, r) for r in rows])  # type: ignore
        return cur

    def begin(self) -> None:
        """Open the pending transaction now (before a statement that cannot carry it)."""
        if self._begin is not None:
            begin, self._begin = self._begin, None
            self.raw.execute(begin.encode())

    def end(self, commit: bool) -> None:
        """Commit or roll back the transaction, if one was opened."""
        self._begin = None
        if self.in_transaction and not self.raw.closed:
            self.raw.execute(b"COMMIT" if commit else b"ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (as sqlite3.Connection.in_transaction)."""
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE


def connect(url: str) -> psycopg.Connection[Any]:
    """A psycopg connection, or a StoreError naming the redacted URL."""
    try:
        import psycopg
    except ImportError as exc:
        raise StoreError("PEEK_DATABASE_URL names PostgreSQL but psycopg is missing",
                         _INSTALL_HINT) from exc
    try:
        return psycopg.connect(libpq_url(url), connect_timeout=10)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"cannot connect to {redact(url)}: {reason.replace(url, redact(url))}",
                         "check PEEK_DATABASE_URL or --db, and that the server runs") from exc


#: idle connections per (process, URL), reused by `read`/`write` (a connect costs milliseconds)
_IDLE: dict[tuple[int, str], list[psycopg.Connection[Any]]] = {}
_IDLE_LOCK = threading.Lock()
MAX_IDLE = 4


@contextmanager
def _borrowed(url: str) -> Iterator[psycopg.Connection[Any]]:
    """An idle connection of this process, or a new one; kept for reuse when left clean."""
    from psycopg.pq import TransactionStatus

    key = (os.getpid(), url)
    with _IDLE_LOCK:
        idle = _IDLE.get(key)
        conn = idle.pop() if idle else None
    if conn is None or conn.closed:
        conn = connect(url)
        conn.autocommit = True  # read() and write() send BEGIN themselves, with a statement
    try:
        yield conn
    except BaseException:
        conn.close()
        raise
    if conn.closed or conn.info.transaction_status != TransactionStatus.IDLE:
        conn.close()
        return
    with _IDLE_LOCK:
        pool = _IDLE.setdefault(key, [])
        if len(pool) < MAX_IDLE:
            pool.append(conn)
            return
    conn.close()


def close_idle(url: str) -> None:
    """Close this process's idle connections to `url`."""
    with _IDLE_LOCK:
        idle = _IDLE.pop((os.getpid(), url), [])
    for conn in idle:
        conn.close()


#: a read: one snapshot, as SQLite's deferred transactions see one
READ_BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"


@contextmanager
def read(url: str) -> Iterator[PgConnection]:
    """A REPEATABLE READ snapshot, rolled back at the end.

    The BEGIN travels with the first statement and the connection stays open in this process,
    so a one-statement read costs two round trips (statement, ROLLBACK).
    """
    with _borrowed(url) as conn:
        pg = PgConnection(conn, READ_BEGIN)
        try:
            yield pg
        finally:
            pg.end(commit=False)


@contextmanager
def write(url: str) -> Iterator[PgConnection]:
    """A write transaction that queues behind every other writer (the store's write lock)."""
    with _borrowed(url) as conn:
        pg = PgConnection(conn, "BEGIN")
        take_write_lock(pg.execute)
        try:
            yield pg
        except BaseException:
            pg.end(commit=False)
            raise
        pg.end(commit=True)


def take_write_lock(execute: Callable[[str], Any]) -> None:
    """The transaction-level writer lock: held until commit or rollback (or a dead connection)."""
    execute(f"SELECT pg_advisory_xact_lock({LOCK_SPACE}, {lock_key(WRITE_LOCK)})")


@contextmanager
def session_lock(url: str, name: str) -> Iterator[None]:
    """A named lock across machines, held on its own connection (released if it dies)."""
    with connect(url) as conn:
        conn.autocommit = True
        conn.execute(f"SELECT pg_advisory_lock({LOCK_SPACE}, {lock_key(name)})")
        try:
            yield
        finally:
            conn.execute(f"SELECT pg_advisory_unlock({LOCK_SPACE}, {lock_key(name)})")


def inspect(url: str) -> str | None:
    """The store's schema revision, None when empty; refuse a database that is not peek's."""
    with connect(url) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
        if "alembic_version" not in tables:
            if tables:
                raise StoreError(f"{redact(url)} has tables but is not a peek store",
                                 "give an empty database")
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if row is None else str(row[0])


def server_facts(url: str) -> dict[str, Any]:
    """Server version and advisory locks peek holds now, for `peek doctor`."""
    with connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        held = conn.execute("SELECT count(*) FROM pg_locks l JOIN pg_database d ON "
                            "d.oid = l.database WHERE l.locktype = 'advisory' AND "
                            "d.datname = current_database() AND l.classid::bigint = %s",
                            (LOCK_SPACE,)).fetchone()
    return {"server_version": version[0] if version else None,
            "advisory_locks_held": int(held[0]) if held else 0}


def vacuum_schema(url: str) -> None:
    """VACUUM (ANALYZE) every table of the store's schema (after a migration rewrote some)."""
    with connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
    if tables:
        vacuum(url, tables)


def vacuum(url: str, tables: Sequence[str]) -> None:
    """VACUUM (ANALYZE) tables after a bulk write, outside any transaction (as it must run)."""
    with connect(url) as conn:
        conn.autocommit = True
        conn.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")


# --- LangGraph checkpoints (`peek ask --resume`) in the store's own database ------------------

#: URLs whose checkpoint tables this process has made or checked already
_CHECKPOINTS_READY: set[str] = set()


@contextmanager
def checkpointer(url: str) -> Iterator[PostgresSaver]:
    """LangGraph's PostgreSQL checkpointer (langgraph-checkpoint-postgres) on the store's
    database, so a session stopped on one machine resumes on another. Its tables are made on
    first use, under a lock so that concurrent first asks make them once."""
    try:
        from langgraph.checkpoint.postgres import PostgresSaver
    except ImportError as exc:
        raise StoreError("checkpoints on PostgreSQL need langgraph-checkpoint-postgres",
                         _INSTALL_HINT) from exc
    from psycopg.rows import dict_row

    conn = connect(url)
    conn.autocommit = True  # the saver's own transactions, as its documentation asks
    conn.row_factory = dict_row  # type: ignore[assignment]
    conn.prepare_threshold = 0
    with conn:
        saver = PostgresSaver(conn)  # type: ignore[arg-type]
        if url not in _CHECKPOINTS_READY:
            with session_lock(url, "checkpoints"):
                saver.setup()
            _CHECKPOINTS_READY.add(url)
        yield saver


# --- scratch copies (`peek eval`): a schema per copy on the store's own server ----------------

def schema_url(url: str, schema: str) -> str:
    """The URL whose connections work in `schema` (their search_path names only it)."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise ValueError(f"not a plain schema name: {schema!r}")
    from urllib.parse import parse_qsl, quote, urlencode

    base, _, query = url.partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True))
    # the server applies -c settings in order: this search_path wins over one the URL had
    params["options"] = f"{params.get('options', '')} -csearch_path={schema}".strip()
    return f"{base}?{urlencode(params, quote_via=quote)}"


def create_schema(url: str, schema: str) -> str:
    """A new, empty schema on the store's server; the URL that works in it."""
    from psycopg import sql

    target = schema_url(url, schema)
    with connect(url) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    return target


def drop_schema(url: str, schema: str) -> None:
    """Drop a scratch schema and everything in it (nothing when it is gone already)."""
    from psycopg import sql

    with connect(url) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def clone_schema(url: str, schema: str) -> str:
    """A copy of the store `url` works in, made on the server in a new schema, from one
    snapshot: every table with its rows, indexes, defaults, id sequences and foreign keys.
    Returns the URL that works in the copy."""
    from psycopg import sql

    with connect(url) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        source = str(_one(conn, "SELECT current_schema()"))
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename",
            (source,))]
        keys = conn.execute(_FOREIGN_KEYS, (source,)).fetchall()
        serials = conn.execute(_SERIALS, (source,)).fetchall()
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        for table in tables:
            src, dst = sql.Identifier(source, table), sql.Identifier(schema, table)
            conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(dst, src))
            conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(dst, src))
        for table, column, sequence in serials:
            _clone_sequence(conn, source, schema, table, column, sequence)
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        for table, name, definition in keys:  # unqualified: they now name the copy's tables
            conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} " + definition.replace(
                "{", "{{").replace("}", "}}")).format(sql.Identifier(table), sql.Identifier(name)))
    target = schema_url(url, schema)
    vacuum(target, tables)
    return target


_FOREIGN_KEYS = ("SELECT t.relname, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
                 "JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON "
                 "n.oid = c.connamespace WHERE c.contype = 'f' AND n.nspname = %s")
#: id columns whose default draws from a sequence (SERIAL), with that sequence's name
_SERIALS = ("SELECT c.table_name, c.column_name, s.relname FROM information_schema.columns c "
            "JOIN pg_class s ON s.relkind = 'S' AND s.relnamespace = %s::regnamespace AND "
            "c.column_default = 'nextval(''' || s.relname || '''::regclass)' "
            "WHERE c.table_schema = current_schema()")


def _clone_sequence(conn: psycopg.Connection[Any], source: str, schema: str, table: str,
                    column: str, sequence: str) -> None:
    """Give the copy's id column its own sequence, standing where the source's stands."""
    from psycopg import sql

    seq = sql.Identifier(schema, sequence)
    conn.execute(sql.SQL("CREATE SEQUENCE {} OWNED BY {}").format(
        seq, sql.Identifier(schema, table, column)))
    conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT nextval({})").format(
        sql.Identifier(schema, table), sql.Identifier(column), sql.Literal(f"{schema}.{sequence}")))
    conn.execute(sql.SQL("SELECT setval({}, last_value, is_called) FROM {}").format(
        sql.Literal(f"{schema}.{sequence}"), sql.Identifier(source, sequence)))


def _one(conn: psycopg.Connection[Any], query: str) -> Any:
    row = conn.execute(query).fetchone()  # type: ignore[arg-type]
    return None if row is None else row[0]
