"""The store: pragmas, migrations on open, and refusing files it must not touch."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

import peek
from peek.db import HEAD_REVISION, REVISIONS, open_database
from peek.errors import StoreError


def test_open_creates_wal_store_with_foreign_keys(tmp_path: Path) -> None:
    db = open_database(tmp_path / "peek.db")
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        assert version == HEAD_REVISION
        tables = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master")}
    assert {"corpora", "files", "chunks", "symbols"} <= tables
    db.close()


def test_revisions_match_the_alembic_chain() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(peek.__file__).parent / "migrations"))
    script = ScriptDirectory.from_config(cfg)
    chain = [rev.revision for rev in script.walk_revisions()]
    assert tuple(reversed(chain)) == REVISIONS


def test_corrupt_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "peek.db"
    junk = b"this is not a database at all\n" * 100
    path.write_bytes(junk)
    with pytest.raises(StoreError, match="not a SQLite database"):
        open_database(path)
    assert path.read_bytes() == junk


def test_foreign_sqlite_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "peek.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('keep me')")
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a peek store"):
        open_database(path)
    assert path.read_bytes() == before


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "peek.db"
    open_database(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    before = path.read_bytes()
    with pytest.raises(StoreError, match="9999.*unknown to this peek"):
        open_database(path)
    assert path.read_bytes() == before


def test_truncated_database_gives_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "peek.db"
    open_database(path).close()
    data = path.read_bytes()
    path.write_bytes(data[:100] + b"\xff" * (len(data) - 100))
    with pytest.raises(StoreError):
        open_database(path)


OPEN_AND_REPORT = """
import sys
from pathlib import Path
from peek.db import open_database
db = open_database(Path(sys.argv[1]))
with db.read() as conn:
    print(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar())
"""


def test_concurrent_first_opens_migrate_once(tmp_path: Path) -> None:
    path = str(tmp_path / "peek.db")
    procs = [
        subprocess.Popen([sys.executable, "-c", OPEN_AND_REPORT, path], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outputs]
    assert [out.strip() for out, _ in outputs] == [HEAD_REVISION] * 4


def test_plain_sqlite_writes_commit_or_roll_back_whole(tmp_path: Path) -> None:
    open_database(tmp_path / "peek.db").close()  # created and migrated (with alembic)
    db = open_database(tmp_path / "peek.db")
    with db.raw_write() as conn:
        conn.execute("INSERT INTO corpora (root, kind, created_at) VALUES ('/a', 'folder', 0)")
    with pytest.raises(RuntimeError), db.raw_write() as conn:
        conn.execute("INSERT INTO corpora (root, kind, created_at) VALUES ('/b', 'folder', 0)")
        raise RuntimeError("interrupted")
    with db.query() as conn:
        assert [r[0] for r in conn.execute("SELECT root FROM corpora")] == ["/a"]
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert "engine" not in db.__dict__  # a current store needs no SQLAlchemy engine for this
    db.close()
