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


def pool_sized(tag: str) -> dict[str, str]:
    from peek.retrieval import indexer

    return {f"pkg/{tag}{i:03d}.py": f"def {tag}_{i}():\n    return {i}\n"
            for i in range(indexer.PARALLEL_MIN + 10)}


def test_a_new_store_is_indexed_while_it_is_created(make_corpus, home: Path) -> None:
    """The first index into a missing store parses before the store exists: same rows."""
    from peek.retrieval.indexer import index_corpus

    files = pool_sized("early")
    early_peek = Peek(make_corpus(files))
    assert not (home / "peek.db").exists()
    stats = early_peek.index()
    plain = Peek(make_corpus(files), home.parent / "other-home")
    plain_stats = index_corpus(plain.db, plain.root, plain.settings.max_file_bytes)
    assert (stats.files, stats.added, stats.chunks) == (plain_stats.files, plain_stats.added,
                                                         plain_stats.chunks)
    assert file_rows(early_peek) == file_rows(plain)
    assert fts_count(early_peek) == chunk_count(early_peek) == stats.chunks
    assert early_peek.map().entries  # the first index seeded the map (tokenizer preloaded)


def test_an_early_parse_the_store_does_not_need_is_dropped(make_corpus, home: Path) -> None:
    """A parse planned as if the store were new is not used when the store knows the files."""
    from peek.retrieval.indexer import index_corpus, start_first_index

    files = pool_sized("known")
    peek = Peek(make_corpus(files))
    peek.index()
    edited = peek.root / "pkg/known007.py"
    edited.write_text("def known_7():\n    return 'seven'\n")
    early = start_first_index(peek.root, peek.settings.max_file_bytes)
    stats = index_corpus(peek.db, peek.root, peek.settings.max_file_bytes, early=early)
    assert (stats.added, stats.changed, stats.removed) == (0, 1, 0)
    assert fts_count(peek) == chunk_count(peek) == stats.chunks
    hits = peek.search("seven", 1)
    assert hits and hits[0].path == "pkg/known007.py"


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


def test_parse_workers_never_free_what_they_inherit(make_corpus, tmp_path: Path) -> None:
    """An unreachable store connection in the caller's heap must not be freed (closed, its WAL
    checkpointed) inside a forked parse worker: SQLite's fork hazard, which corrupted a store
    when a script indexed corpora one after another. A finalizer says which process ran it;
    each worker runs a full GC pass as it starts."""
    import subprocess
    import sys

    from peek.retrieval.indexer import PARALLEL_MIN

    first = make_corpus({"a.py": "def a():\n    return 1\n"})
    corpus = make_corpus({f"pkg/m{i}.py": f"def f{i}(x):\n    return x + {i}\n"
                          for i in range(PARALLEL_MIN + 10)})
    home, log = tmp_path / "h", tmp_path / "freed.log"
    script = tmp_path / "script.py"
    script.write_text(
        "import gc, os, sqlite3\nfrom pathlib import Path\nfrom peek.service import Peek\n"
        "class Trace:\n    def __del__(self):\n"
        f"        Path({str(log)!r}).open('a').write(f'{{os.getpid()}}\\n')\n"
        f"old = Peek(Path({str(first)!r}), Path({str(home)!r}))\nold.index()\n"
        "gc.disable()\nold.cycle, old.trace = old, Trace()\nold.search('a')\ndel old\n"
        "os.register_at_fork(after_in_child=gc.collect)  # a worker's GC pass, made certain\n"
        f"stats = Peek(Path({str(corpus)!r}), Path({str(home)!r})).index()\n"
        "gc.enable()\ngc.collect()\n"
        f"check = sqlite3.connect(Path({str(home)!r}) / 'peek.db')\n"
        "print(os.getpid(), stats.files, check.execute('PRAGMA integrity_check').fetchone()[0])\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=180, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    pid, files, integrity = run.stdout.split()
    assert (files, integrity) == (str(PARALLEL_MIN + 10), "ok")
    assert log.read_text().split() == [pid]  # freed once, by the process that owned it


def test_first_index_of_only_binary_files_is_an_error_naming_why(make_corpus,
                                                                  home: Path) -> None:
    root = make_corpus({"notes.txt": "x"})
    (root / "notes.txt").write_bytes(b"\0\1\2")
    with pytest.raises(CorpusError, match=r"no indexable files in .* \(1 binary\)"):
        Peek(root).index()
    (root / "notes.txt").write_text("now text\n")
    assert Peek(root).index().files == 1
