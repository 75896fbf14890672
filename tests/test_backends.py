"""Backend selection without a server: URLs, redaction, SQL translation, `--db` (issue 14)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import SAMPLE, run_peek

from peek.cli.app import take_db_option
from peek.config import Settings
from peek.db import Database, open_database
from peek.errors import ConfigError
from peek.postgres import adapt_params, is_postgres_url, redact, translate
from peek.retrieval.pg_lexical import stem, tsquery, tsvector_literal


def test_urls_pick_the_backend_and_hide_the_password() -> None:
    url = "postgresql+psycopg://alice:s3cret@db.example:5432/peek"
    assert is_postgres_url(url) and is_postgres_url("postgres://x@y/z")
    assert not is_postgres_url("sqlite:///tmp/peek.db")
    assert redact(url) == "postgresql+psycopg://alice:***@db.example:5432/peek"
    assert redact("postgresql+psycopg://alice@/peek?host=/tmp") == \
        "postgresql+psycopg://alice@/peek?host=/tmp"
    assert redact("postgresql://alice@h/peek?sslmode=require&password=s3cret") == \
        "postgresql://alice@h/peek?sslmode=require&password=***"
    assert Database(url).location == redact(url) and Database(url).backend == "postgresql"


def test_sqlite_urls_and_paths_open_the_same_store(tmp_path: Path) -> None:
    open_database(f"sqlite:///{tmp_path / 'a.db'}").close()
    assert (tmp_path / "a.db").exists()
    with pytest.raises(ConfigError, match="unsupported database URL mysql://u:\\*\\*\\*@h/d"):
        open_database("mysql://u:pw@h/d")


def test_sqlite_dialect_becomes_psycopg_dialect() -> None:
    sql, lists = translate("SELECT a FROM t WHERE id IN (SELECT value FROM json_each(?)) "
                           "AND b = ? AND c LIKE '5%' AND d::text = :n AND instr(:n, '.') = 0 "
                           "AND window NOT IN (SELECT value FROM json_each(:w)) LIMIT -1")
    assert sql == ("SELECT a FROM t WHERE id = ANY(%s) AND b = %s AND c LIKE '5%%' AND "
                   "d::text = %(n)s AND strpos(%(n)s, '.') = 0 AND \"window\" <> ALL(%(w)s) "
                   "LIMIT ALL")
    assert lists == (0, "w")
    assert adapt_params((0,), ["[1, 2]", 3]) == [[1, 2], 3]
    assert adapt_params(("w",), {"w": '["a"]', "n": "x"}) == {"w": ["a"], "n": "x"}


def test_postgres_tokens_match_fts5_porter() -> None:
    assert [stem(w) for w in ("running", "connections", "redirects", "getmaxretries")] == \
        ["run", "connect", "redirect", "getmaxretri"]
    assert stem("ab") == "ab" and stem("x_y_z") == "x_y_z"  # short and non-alpha: as is
    literal, n = tsvector_literal([("src http session py", "B"), ("Session", "A"),
                                   ("it's redirects", "D")])
    assert n == 8
    assert literal == "'src':1B 'http':2B 'session':3B,5A 'py':4B 'it':6D 's':7D 'redirect':8D"
    assert tsquery(["a'b", "c"]) == "'a''b' | 'c'"


def test_db_option_anywhere_sets_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEEK_DATABASE_URL", "")  # recorded, so the test's setting is undone
    argv = ["peek", "search", ".", "q", "--db", "postgresql://u@h/d", "-k", "3"]
    take_db_option(argv)
    assert argv == ["peek", "search", ".", "q", "-k", "3"]
    assert Settings.load().database_url == "postgresql://u@h/d"
    argv = ["peek", "--db=sqlite:///x.db", "mcp"]
    take_db_option(argv)
    assert argv == ["peek", "mcp"] and Settings.load().store == "sqlite:///x.db"


def test_cli_db_option_with_a_sqlite_url(
        make_corpus: Callable[[dict[str, str | bytes]], Path], tmp_path: Path) -> None:
    corpus = str(make_corpus(SAMPLE))
    store = tmp_path / "elsewhere" / "team.db"
    done = run_peek("index", corpus, "--db", f"sqlite:///{store}", "--home",
                    str(tmp_path / "home"))
    assert done.returncode == 0, done.stderr
    assert store.exists() and not (tmp_path / "home" / "peek.db").exists()
    doctor = json.loads(run_peek("doctor", "--json", "--db", f"sqlite:///{store}").stdout)
    assert doctor["backend"]["name"] == "sqlite" and doctor["backend"]["migration"].startswith(
        "at head")


def test_an_unreachable_server_is_one_line_with_the_password_hidden(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://peek:hunter2@/peek?host={tmp_path}&connect_timeout=2"
    done = run_peek("status", str(tmp_path), "--db", url)
    assert done.returncode == 2
    assert done.stderr.startswith("peek: error: cannot connect to postgresql+psycopg://peek:***@")
    assert "hunter2" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_postgres_terms_agree_with_fts5_on_a_real_corpus_unicode_included() -> None:
    """Every token of peek's own sources and docs as the PostgreSQL index makes it (Unicode
    words, diacritics folded, then `text.stem`) is FTS5's `porter unicode61` term, except
    Porter's C-code departures FTS5 follows (-logi -> -log, -bli -> -ble), three-letter words
    and a few non-ASCII ones (two diacritics on a letter, `ß`, `μ`)."""
    from peek.retrieval.pg_lexical import fts5_stems, term, tokens

    root = Path(__file__).resolve().parents[1]
    words: set[str] = set()
    for path in [*root.glob("*.md"), *root.rglob("*.py")]:
        if not {".venv", "__pycache__", "build"} & set(path.relative_to(root).parts):
            words.update(tokens(path.read_text(encoding="utf-8", errors="ignore"), False))
    fts5 = fts5_stems(words)
    differ = sorted((w, fts5[w], term(w)) for w in fts5 if fts5[w] != term(w))
    unexplained = [d for d in differ if d[0].isascii() and len(d[0]) > 3
                   and not d[2].endswith(("logi", "bli"))]
    assert len(fts5) > 5000 and len(differ) < len(fts5) / 500
    assert not unexplained, unexplained
    assert term("héllo") == fts5_stems(["héllo"])["héllo"] == "hello"
