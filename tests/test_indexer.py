"""Incremental indexing: exactly what changed is re-read, and the store matches the tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import SAMPLE

from peek.errors import CorpusError
from peek.service import Peek


def file_rows(peek: Peek) -> dict[str, tuple[str, str]]:
    with peek.db.read() as conn:
        rows = conn.exec_driver_sql(
            "SELECT path, blob_sha, language FROM files WHERE corpus_id = ?", (peek.corpus_id,)
        )
        return {r[0]: (r[1], r[2]) for r in rows}


def fts_count(peek: Peek) -> int:
    with peek.db.read() as conn:
        sql = f"SELECT COUNT(*) FROM chunks_fts_{peek.corpus_id}"
        return int(conn.exec_driver_sql(sql).scalar())


def chunk_count(peek: Peek) -> int:
    with peek.db.read() as conn:
        return int(conn.exec_driver_sql("SELECT COUNT(*) FROM chunks").scalar())


def test_first_index_reads_everything(make_corpus, home: Path) -> None:
    peek = Peek(make_corpus(SAMPLE))
    stats = peek.index()
    assert (stats.files, stats.added, stats.changed, stats.removed) == (4, 4, 0, 0)
    assert stats.first_index
    assert stats.chunks == chunk_count(peek) == fts_count(peek) > 4
    rows = file_rows(peek)
    assert rows["src/http/session.py"][1] == "python"
    assert rows["docs/guide.md"][1] == "markdown"


def test_no_change_reads_nothing(make_corpus, home: Path) -> None:
    peek = Peek(make_corpus(SAMPLE))
    first = peek.index()
    again = peek.index()
    assert (again.added, again.changed, again.removed) == (0, 0, 0)
    assert (again.files, again.chunks) == (first.files, first.chunks)


def test_edit_rename_delete_are_exact(make_corpus, home: Path) -> None:
    root = make_corpus(SAMPLE)
    peek = Peek(root)
    peek.index()
    before = file_rows(peek)
    (root / "src/http/adapters.py").write_text("def getMaxRetries():\n    return 5\n")
    os.rename(root / "docs/guide.md", root / "docs/manual.md")
    (root / "README.txt").unlink()
    (root / "new.py").write_text("NEW = 1\n")
    stats = peek.index()
    after = file_rows(peek)
    assert (stats.added, stats.changed, stats.removed) == (2, 1, 2)
    assert set(after) == {"src/http/session.py", "src/http/adapters.py", "docs/manual.md", "new.py"}
    assert after["docs/manual.md"][0] == before["docs/guide.md"][0]
    assert after["src/http/adapters.py"][0] != before["src/http/adapters.py"][0]
    assert after["src/http/session.py"] == before["src/http/session.py"]
    assert stats.chunks == chunk_count(peek) == fts_count(peek)
    assert [h.path for h in peek.search("getMaxRetries", 3)][:1] == ["src/http/adapters.py"]
    assert not [h for h in peek.search("HTTPAdapter send request", 20) if h.path == "README.txt"]


def test_touch_without_content_change_is_not_reparsed(make_corpus, home: Path) -> None:
    root = make_corpus(SAMPLE)
    peek = Peek(root)
    peek.index()
    target = root / "src/http/session.py"
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    stats = peek.index()
    assert (stats.added, stats.changed, stats.removed) == (0, 0, 0)


def test_invalid_utf8_is_replaced_and_counted(make_corpus, home: Path) -> None:
    root = make_corpus({"bad.txt": b"caf\xe9 ol\xff\n", "ok.txt": "fine\n"})
    stats = Peek(root).index()
    assert stats.decode_errors == 2
    assert stats.files == 2


def test_binary_and_large_files_are_skipped(make_corpus, home: Path, monkeypatch) -> None:
    monkeypatch.setenv("PEEK_MAX_FILE_BYTES", "100")
    root = make_corpus({"data.bin": b"ab\0cd" * 10, "big.txt": "x" * 500, "a.py": "a = 1\n"})
    stats = Peek(root).index()
    assert (stats.files, stats.skipped_binary, stats.skipped_large) == (1, 1, 1)


def test_file_turning_binary_is_dropped(make_corpus, home: Path) -> None:
    root = make_corpus({"a.txt": "text\n", "b.txt": "more\n"})
    peek = Peek(root)
    peek.index()
    (root / "a.txt").write_bytes(b"\0\1\2")
    stats = peek.index()
    assert stats.removed == 1
    assert set(file_rows(peek)) == {"b.txt"}


def test_empty_corpus_is_an_error(make_corpus, home: Path) -> None:
    root = make_corpus({".gitignore": "*\n"})
    (root / ".gitignore").unlink()
    with pytest.raises(CorpusError, match="no indexable files"):
        Peek(root).index()


def test_symbols_and_references_are_stored(make_corpus, home: Path) -> None:
    peek = Peek(make_corpus(SAMPLE))
    peek.index()
    with peek.db.read() as conn:
        symbols = {r[0] for r in conn.exec_driver_sql("SELECT qualname FROM symbols")}
        imports, idents = conn.exec_driver_sql(
            "SELECT imports, identifiers FROM files WHERE path = 'src/http/session.py'"
        ).one()
    assert {"Session", "Session.resolve_redirects", "HTTPAdapter", "getMaxRetries"} <= symbols
    assert imports.split("\n") == ["os", ".adapters"]
    assert "HTTPAdapter" in idents.split()


def test_two_corpora_keep_separate_statistics(make_corpus, home: Path) -> None:
    a = Peek(make_corpus(SAMPLE))
    a.index()
    baseline = [(h.path, round(h.score, 6)) for h in a.search("redirects session", 5)]
    b = Peek(make_corpus({f"m{i}.py": "def session():\n    redirects = 1\n" for i in range(30)}))
    b.index()
    assert [(h.path, round(h.score, 6)) for h in a.search("redirects session", 5)] == baseline


def test_a_big_run_parses_in_batches_with_the_process_pool(make_corpus, home: Path) -> None:
    from peek.retrieval import indexer

    n = indexer.PARALLEL_MIN + indexer.BATCH_FILES  # pool on, more than one batch
    files = {f"pkg/m{i:03d}.py": f"def func_{i}():\n    return {i}\n" for i in range(n)}
    peek = Peek(make_corpus(files))
    seen: list[tuple[int, int]] = []
    stats = peek.index(lambda done, total: seen.append((done, total)))
    assert (stats.files, stats.added) == (n, n)
    assert [d for d, _ in seen] == [indexer.BATCH_FILES, n] and {t for _, t in seen} == {n}
    assert set(file_rows(peek)) == set(files)
    assert fts_count(peek) == chunk_count(peek) == stats.chunks
    hits = peek.search("func_321", 1)
    assert hits and hits[0].path == "pkg/m321.py"


def test_a_script_without_a_main_guard_indexes_in_parallel(make_corpus, tmp_path: Path) -> None:
    """The SDK from a plain script: the parse pool (PARALLEL_MIN files or more) must not re-run
    the caller's script in its workers, which would crash or hang the index."""
    import subprocess
    import sys

    from peek.retrieval.indexer import PARALLEL_MIN

    corpus = make_corpus({f"pkg/m{i}.py": f"def f{i}(x):\n    return x + {i}\n"
                          for i in range(PARALLEL_MIN + 10)})
    script = tmp_path / "script.py"
    script.write_text("from pathlib import Path\nfrom peek.service import Peek\n"
                      f"peek = Peek(Path({str(corpus)!r}), Path({str(tmp_path / 'h')!r}))\n"
                      "stats = peek.index()\n"
                      "print(stats.files)\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=180, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == [str(PARALLEL_MIN + 10)]
