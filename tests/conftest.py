"""Shared fixtures: an isolated PEEK_HOME and a builder for small real corpora."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import write_tree

from peek.db import Database
from peek.retrieval.indexer import index_corpus
from peek.service import Peek


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh peek home; PEEK_HOME points at it so nothing leaks into the user's data dir."""
    folder = tmp_path / "peek-home"
    monkeypatch.setenv("PEEK_HOME", str(folder))
    return folder


@pytest.fixture
def make_corpus(tmp_path: Path) -> Callable[[dict[str, str | bytes]], Path]:
    """Write a dict of relative path → content into a new folder and return its root."""
    counter = iter(range(1000))

    def build(files: dict[str, str | bytes]) -> Path:
        root = tmp_path / f"corpus{next(counter)}"
        root.mkdir()
        return write_tree(root, files)

    return build


@pytest.fixture
def index_unseeded(
    make_corpus: Callable[[dict[str, str | bytes]], Path], tmp_path: Path
) -> Iterator[Callable[[dict[str, str | bytes]], tuple[Database, int, Path]]]:
    """Index a corpus without seeding its map, for tests that start from an empty map."""
    opened: list[Peek] = []

    def build(files: dict[str, str | bytes]) -> tuple[Database, int, Path]:
        service = Peek(make_corpus(files), tmp_path / "home")
        index_corpus(service.db, service.root, service.settings.max_file_bytes)
        opened.append(service)
        return service.db, service.corpus_id, service.root

    yield build
    for service in opened:
        service.close()


@pytest.fixture(autouse=True, scope="session")
def _sqlite_unless_asked() -> Iterator[None]:
    """Every test (module fixtures too) runs on the home's SQLite file unless it sets
    PEEK_DATABASE_URL itself (`pg_url` tests, through monkeypatch)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PEEK_DATABASE_URL", raising=False)
        yield


@pytest.fixture(autouse=True)
def _no_leaked_database_url() -> Iterator[None]:
    """A test that leaves PEEK_DATABASE_URL set fails (it would move later tests' stores)."""
    import os

    yield
    assert "PEEK_DATABASE_URL" not in os.environ, "a test left PEEK_DATABASE_URL set"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A PostgreSQL server URL: PEEK_TEST_POSTGRES_URL, else a throwaway local cluster.

    Without either, the postgres tests skip, saying why; in CI (CI=true) they fail instead.
    """
    import os
    import tempfile

    import pgserver

    given = os.environ.get("PEEK_TEST_POSTGRES_URL", "").strip()
    if given:
        yield given
        return
    if pgserver.binaries() is None:
        reason = ("no PostgreSQL server: set PEEK_TEST_POSTGRES_URL or install the server "
                  "binaries (Debian: postgresql-15)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI must run the postgres tests)")
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="peek-pg-"))
    try:
        yield pgserver.start(folder)
    finally:
        pgserver.stop(folder)


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A URL whose connections use a fresh, empty schema of the test server (dropped after)."""
    import uuid

    import psycopg

    from peek.postgres import libpq_url

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_url(pg_server), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in pg_server else "?"
    yield f"{pg_server}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(libpq_url(pg_server), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def shop(make_corpus: Callable[[dict[str, str | bytes]], Path], home: Path) -> Path:
    """The small shop corpus of the outcome tests (tests/test_outcome_summary.py), indexed."""
    from helpers import run_peek
    from test_outcome_summary import SHOP

    root = make_corpus(SHOP)
    assert run_peek("index", str(root)).returncode == 0
    return root
