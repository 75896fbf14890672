"""Incremental, blob-keyed indexing of a corpus into the store, in bounded batches.

Files are read and parsed BATCH_FILES at a time (by a process pool for big runs: forked while
the process has one thread, with its heap frozen so no worker frees an inherited SQLite
connection; else a forkserver) and each batch is written in
its own transaction, so peak memory is one or two batches, not the corpus. An interrupted run
keeps the batches it wrote and the next run resumes from them (their blobs are known). The
file graph and the stamp (`indexed_at`, HEAD) are written last.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from peek import gcpause
from peek.blobs import git_blob_sha, is_binary
from peek.db import Database
from peek.errors import CorpusError
from peek.gitutil import is_git_tree
from peek.retrieval.lexical import delete_fts_rows, ensure_fts, fts_table, insert_fts_rows
from peek.retrieval.skipped import Skipped, load_skipped, still_skipped
from peek.retrieval.walk import (
    FileEntry,
    GitState,
    WalkReport,
    git_state,
    walk_corpus,
)
from peek.safefs import SandboxError, read_beneath
from peek.text import expand_for_index, path_field

if TYPE_CHECKING:  # a no-change index needs neither the parsers nor a process pool
    from concurrent.futures import Future, ProcessPoolExecutor
    from multiprocessing.context import BaseContext

    from peek.retrieval.chunking import ParsedFile
    from peek.retrieval.graph import FileGraph

Progress = Callable[[int, int], None]
PARALLEL_MIN = 200
MAX_WORKERS = 4
BATCH_FILES = 256
PR_SET_PDEATHSIG = 1  # linux/prctl.h
JOB_FILES = 16
Job = tuple[Path, int, FileEntry, str | None]  # root, size cap, file, blob sha it had


@dataclass(frozen=True, slots=True)
class Known:
    """What the store holds about a file, enough to decide whether to read it again."""

    id: int
    blob_sha: str
    size: int
    mtime_ns: int


@dataclass(slots=True)
class ReadFile:
    """A file read and parsed, ready to be written."""

    entry: FileEntry
    blob_sha: str
    parsed: ParsedFile
    line_count: int
    decode_errors: int
    fts: list[tuple[str, str]]  # (symbol, body) search fields per chunk, made by the worker


Outcome = ReadFile | Literal["same", "binary", "unreadable"]


@dataclass(slots=True)
class IndexStats:
    """The outcome of one index run (the `peek index --json` contract plus what was skipped)."""

    corpus: str
    files: int = 0
    chunks: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    seconds: float = 0.0
    skipped_binary: int = 0
    skipped_large: int = 0
    decode_errors: int = 0
    first_index: bool = False
    unreadable: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """The JSON contract of `peek index --json`, then the extra counters."""
        return {
            "corpus": self.corpus, "files": self.files, "chunks": self.chunks,
            "added": self.added, "changed": self.changed, "removed": self.removed,
            "seconds": round(self.seconds, 3), "skipped_binary": self.skipped_binary,
            "skipped_large": self.skipped_large, "decode_errors": self.decode_errors,
        }


def index_corpus(
    db: Database, root: Path, max_file_bytes: int, progress: Progress | None = None,
    on_graph: Callable[[FileGraph], None] | None = None, early: EarlyParse | None = None,
    on_last_batch: Callable[[], object] | None = None,
) -> IndexStats:
    """Bring the store in line with the files under `root`, re-reading only what changed.

    Runs one at a time per store: an index plans from what the store knew before it started,
    so two concurrent runs would both insert the same new file. `on_graph` gets the graph when
    this run rebuilt it (so a first index seeds the map without building it again). `early` is
    a parse `start_first_index` began before the store was opened; it is used when the store
    turns out to know none of these files, and stopped otherwise. `on_last_batch` runs while
    the last files parse (the caller may prepare what comes after the index meanwhile).
    """
    try:
        with db.lock("index"):
            return _index(db, root, max_file_bytes, progress, on_graph, early, on_last_batch)
    finally:
        if early is not None:
            early.close()


@dataclass(slots=True)
class EarlyParse:
    """A first index's walk and parse, running while the new store is created."""

    report: WalkReport
    batches: Batches
    started: float

    def close(self) -> None:
        """Stop the parse (its store could not be opened, or it was not needed)."""
        self.batches.close()


def start_first_index(root: Path, max_file_bytes: int) -> EarlyParse:
    """Walk the corpus and start parsing every file now, before the store exists: a new store
    knows no file, so the plan is all of them, and its migrations run while the workers parse."""
    started = time.perf_counter()
    report = walk_corpus(root, max_file_bytes)
    jobs: list[Job] = [(root, max_file_bytes, e, None) for e in report.files]
    return EarlyParse(report, Batches(jobs), started)


def _index(
    db: Database, root: Path, max_file_bytes: int, progress: Progress | None,
    on_graph: Callable[[FileGraph], None] | None = None, early: EarlyParse | None = None,
    on_last_batch: Callable[[], object] | None = None,
) -> IndexStats:
    started = time.perf_counter() if early is None else early.started
    stats = IndexStats(corpus=str(root))
    report = walk_corpus(root, max_file_bytes) if early is None else early.report
    stats.skipped_large, stats.skipped_binary = len(report.too_large), report.binary_suffix
    stats.unreadable = report.unreadable
    corpus_id, known, has_graph = _load_known(db, root)
    if not report.files and not known:  # an indexed corpus emptied since is re-indexed to 0
        raise CorpusError(f"no indexable files in {root}", "add text files or check .peekignore")
    skipped = load_skipped(db, corpus_id)
    stats.first_index = not known
    todo = [e for e in report.files
            if not _unchanged(e, known.get(e.path)) and not still_skipped(e, skipped)]
    corpus_id = _drop_gone(db, root, corpus_id, known, report, stats)
    jobs = [(root, max_file_bytes, e, known[e.path].blob_sha if e.path in known else None)
            for e in todo]
    batches = early.batches if early is not None and early.batches.jobs == jobs else Batches(jobs)
    batches.on_last = on_last_batch
    left_out = _parse_all(db, corpus_id, known, batches, stats, progress)
    git = git_state(root)  # runs git: before the write transaction, not inside it
    with db.raw_write() as conn:
        _remember_skipped(conn, corpus_id, report.files, skipped, left_out)
        _finish(conn, corpus_id, stats, not has_graph, on_graph)
        stats.seconds = time.perf_counter() - started
        _stamp(conn, corpus_id, git, stats.seconds)
    if db.backend == "postgresql" and (stats.added or stats.changed or stats.removed):
        from peek.retrieval.pg_lexical import tables

        db.vacuum(tables(fts_table(corpus_id)))
    if stats.first_index and not stats.files:
        raise _nothing_indexed(root, stats)
    return stats


def _nothing_indexed(root: Path, stats: IndexStats) -> CorpusError:
    """A first index that stored no file says why (what it skipped is remembered for later)."""
    why = [f"{n} {what}" for n, what in ((stats.skipped_binary, "binary"),
                                         (stats.skipped_large, "too large"),
                                         (len(stats.unreadable), "unreadable")) if n]
    return CorpusError(f"no indexable files in {root}" + (f" ({', '.join(why)})" if why else ""),
                       "add text files, or check .peekignore and PEEK_MAX_FILE_BYTES")


def _drop_gone(db: Database, root: Path, corpus_id: int | None, known: dict[str, Known],
               report: WalkReport, stats: IndexStats) -> int:
    """Register the corpus and forget the files no longer on disk, before any parse lands."""
    on_disk = {e.path for e in report.files}
    gone = [k.id for p, k in known.items() if p not in on_disk]
    with db.raw_write() as conn:
        corpus_id = _ensure_corpus(conn, root, corpus_id)
        ensure_fts(conn, corpus_id)
        _delete_files(conn, corpus_id, gone)
    stats.removed = len(gone)
    return corpus_id


def _parse_all(db: Database, corpus_id: int, known: dict[str, Known], batches: Batches,
               stats: IndexStats, progress: Progress | None) -> dict[str, str]:
    """Store each parsed batch in its own transaction (a kill loses one batch, not the run);
    returns the files found binary or unreadable."""
    done = 0
    left_out: dict[str, str] = {}
    with gcpause.paused():
        for batch in batches:
            with db.raw_write() as conn:
                _apply(conn, corpus_id, known, batch, stats)
            left_out.update((e.path, o) for e, o in batch if o in ("binary", "unreadable"))
            done += len(batch)
            if progress is not None:
                progress(done, len(batches.jobs))
    return left_out


def _finish(conn: sqlite3.Connection, corpus_id: int, stats: IndexStats, no_graph: bool,
            on_graph: Callable[[FileGraph], None] | None) -> None:
    """Rebuild the graph if files moved (or was never built) and count the totals."""
    if stats.added or stats.changed or stats.removed or no_graph:
        from peek.retrieval.graph import refresh_saved_graph

        graph = refresh_saved_graph(conn, corpus_id)
        if on_graph is not None:
            on_graph(graph)
    stats.files, stats.chunks = _totals(conn, corpus_id)


def _unchanged(entry: FileEntry, known: Known | None) -> bool:
    """Same size and mtime as when it was indexed: trust it without reading (as git does)."""
    return known is not None and known.size == entry.size and known.mtime_ns == entry.mtime_ns


def _remember_skipped(conn: sqlite3.Connection, corpus_id: int, files: list[FileEntry],
                      skipped: Skipped, left_out: dict[str, str]) -> None:
    """Keep skipped files that are unchanged, add new ones, forget the rest, so a binary file
    with an unknown suffix is not read again on every index (nor keeps `status` dirty)."""
    by_path = {e.path: e for e in files}
    keep = [p for p in skipped if p in by_path and still_skipped(by_path[p], skipped)]
    conn.execute("DELETE FROM skipped_files WHERE corpus_id = ? AND path NOT IN "
                 "(SELECT value FROM json_each(?))", (corpus_id, json.dumps(keep)))
    conn.executemany(
        "INSERT INTO skipped_files (corpus_id, path, size, mtime_ns, reason) "
        "VALUES (?, ?, ?, ?, ?)",
        [(corpus_id, p, by_path[p].size, by_path[p].mtime_ns, why)
         for p, why in left_out.items()])


def _load_known(db: Database, root: Path) -> tuple[int | None, dict[str, Known], bool]:
    """The corpus id, what the store knows of each file, and whether a graph is saved."""
    with db.query() as conn:
        row = conn.execute("SELECT id FROM corpora WHERE root = ?", (str(root),)).fetchone()
        if row is None:
            return None, {}, False
        corpus_id = int(row[0])
        rows = conn.execute(
            "SELECT path, id, blob_sha, size, mtime_ns FROM files WHERE corpus_id = ?",
            (corpus_id,))
        known = {r[0]: Known(r[1], r[2], r[3], r[4]) for r in rows}
        graph = conn.execute("SELECT 1 FROM file_graphs WHERE corpus_id = ?",
                             (corpus_id,)).fetchone()
        return corpus_id, known, graph is not None


class Batches:
    """Outcomes BATCH_FILES at a time; with a pool, the next batch parses while one is written.

    The pool starts, and parses the first batch, as soon as this is made.
    """

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs
        self._batches = [jobs[i : i + BATCH_FILES] for i in range(0, len(jobs), BATCH_FILES)]
        workers = min(os.cpu_count() or 1, MAX_WORKERS)
        context = _pool_context() if len(jobs) >= PARALLEL_MIN and workers >= 2 else None
        self._pool: ProcessPoolExecutor | None = None
        self._pending: list[Future[list[Outcome]]] = []
        self.on_last: Callable[[], object] | None = None  # called once the last batch is parsing
        if context is not None:
            from concurrent.futures import ProcessPoolExecutor

            with gcpause.frozen():  # the first submit forks every worker
                self._pool = ProcessPoolExecutor(workers, mp_context=context,
                                                 initializer=_die_with_parent)
                self._pending = _submit(self._pool, self._batches[0])

    def __iter__(self) -> Iterator[list[tuple[FileEntry, Outcome]]]:
        if self._pool is None:
            for k, batch in enumerate(self._batches):
                if k + 1 == len(self._batches):
                    self._last()
                yield [(job[2], _read_one(*job)) for job in batch]
            return
        with self._pool:
            for k, batch in enumerate(self._batches):
                following = (_submit(self._pool, self._batches[k + 1])
                             if k + 1 < len(self._batches) else [])
                if k + 2 >= len(self._batches):  # the last batch is with the workers now
                    self._last()
                outcomes = [o for future in self._pending for o in future.result()]
                yield list(zip((job[2] for job in batch), outcomes, strict=True))
                self._pending = following

    def _last(self) -> None:
        if self.on_last is not None:
            self.on_last()
            self.on_last = None

    def close(self) -> None:
        """Stop the workers (the index failed, or did not need this parse); files in hand finish."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def _die_with_parent() -> None:
    """Pool initializer: on Linux a worker is killed with the process that forked it, so a
    `kill -9` of `peek index` leaves no worker blocked on its queue forever (fork workers
    hold the queue's write end themselves, so they never see EOF)."""
    import sys

    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(0)


def _pool_context() -> BaseContext | None:
    """fork while this process has one thread (safe then, and it never re-runs the caller's
    script: an SDK script without an `if __name__ == "__main__":` guard indexes fine), else
    forkserver (workers fork from a clean server that preloaded the parsers), else spawn."""
    import multiprocessing as mp
    import threading

    methods = mp.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return mp.get_context("fork")
    if "forkserver" in methods:
        context = mp.get_context("forkserver")
        context.set_forkserver_preload(["peek.retrieval.indexer", "peek.retrieval.chunking"])
        return context
    return mp.get_context("spawn") if "spawn" in methods else None


def _submit(pool: ProcessPoolExecutor, batch: list[Job]) -> list[Future[list[Outcome]]]:
    return [pool.submit(_read_jobs, batch[i : i + JOB_FILES])
            for i in range(0, len(batch), JOB_FILES)]


def _read_jobs(jobs: list[Job]) -> list[Outcome]:
    with gcpause.paused():
        return [_read_one(*job) for job in jobs]


def _read_one(root: Path, max_bytes: int, entry: FileEntry, prior_sha: str | None) -> Outcome:
    """One file's fate: parsed, the same blob as before, binary, or unreadable.

    Read through the race-free reader: a file swapped for a symlink or a FIFO after the walk
    is refused, never followed out of the root or waited on.
    """
    try:
        data = read_beneath(root, entry.fs_rel or entry.path, max_bytes, entry.path)
    except SandboxError:
        return "unreadable"
    if is_binary(data):
        return "binary"
    sha = git_blob_sha(data)
    return "same" if sha == prior_sha else _parse(entry, sha, data)


def _parse(entry: FileEntry, sha: str, data: bytes) -> ReadFile:
    """Decode (invalid UTF-8 replaced and counted) and parse one file."""
    from peek.retrieval.chunking import language_for, parse_file

    try:
        body, errors = data.decode("utf-8"), 0
    except UnicodeDecodeError:
        body = data.decode("utf-8", errors="replace")
        errors = body.count("\ufffd")
    parsed = parse_file(entry.path, body, language_for(entry.path))
    lines = body.count("\n") + (0 if body.endswith("\n") or not body else 1)
    fields = [(symbol_field(c.symbol), expand_for_index(c.text)) for c in parsed.chunks]
    return ReadFile(entry, sha, parsed, lines, errors, fields)


def _ensure_corpus(conn: sqlite3.Connection, root: Path, corpus_id: int | None) -> int:
    if corpus_id is not None:
        return corpus_id
    found = conn.execute("SELECT id FROM corpora WHERE root = ?", (str(root),)).fetchone()
    if found is not None:
        return int(found[0])
    kind = "git" if is_git_tree(root) else "folder"
    row = conn.execute("INSERT INTO corpora (root, kind, created_at) VALUES (?, ?, ?) "
                       "RETURNING id", (str(root), kind, time.time())).fetchone()
    return int(row[0])


def _delete_files(conn: sqlite3.Connection, corpus_id: int, file_ids: list[int]) -> None:
    """Drop files with their FTS rows (chunks and symbols cascade)."""
    delete_fts_rows(conn, corpus_id, file_ids)
    for start in range(0, len(file_ids), 500):
        batch = file_ids[start : start + 500]
        conn.execute(f"DELETE FROM files WHERE id IN ({','.join('?' * len(batch))})", batch)


def _apply(
    conn: sqlite3.Connection,
    corpus_id: int,
    known: dict[str, Known],
    batch: list[tuple[FileEntry, Outcome]],
    stats: IndexStats,
) -> None:
    """Write one batch: refresh stats of same-blob files, drop unreadable ones, rewrite changed."""
    reads = [o for _, o in batch if isinstance(o, ReadFile)]
    dropped: list[int] = []
    for entry, outcome in batch:
        if outcome == "same":
            conn.execute("UPDATE files SET mtime_ns = ?, size = ? WHERE id = ?",
                         (entry.mtime_ns, entry.size, known[entry.path].id))
        elif outcome in ("binary", "unreadable"):
            if entry.path in known:
                dropped.append(known[entry.path].id)
            if outcome == "binary":
                stats.skipped_binary += 1
            else:
                stats.unreadable.append(entry.path)
    changed = [known[r.entry.path].id for r in reads if r.entry.path in known]
    _delete_files(conn, corpus_id, dropped + changed)
    stats.removed += len(dropped)
    stats.changed += len(changed)
    stats.added += len(reads) - len(changed)
    stats.decode_errors += sum(r.decode_errors for r in reads)
    _insert_files(conn, corpus_id, reads)


def _insert_files(conn: sqlite3.Connection, corpus_id: int, reads: list[ReadFile]) -> None:
    """Insert files, chunks, symbols and FTS rows with ids assigned here, in bulk."""
    if not reads:
        return
    file_id = _next_id(conn, "files")
    chunk_id = _next_id(conn, "chunks")
    files: list[tuple[object, ...]] = []
    chunks: list[tuple[object, ...]] = []
    symbols: list[tuple[object, ...]] = []
    fts: list[dict[str, object]] = []
    for read in reads:
        files.append(_file_row(file_id, corpus_id, read))
        ppath = path_field(read.entry.path)
        for chunk, (symbol, body) in zip(read.parsed.chunks, read.fts, strict=True):
            chunks.append((chunk_id, file_id, chunk.start_line, chunk.end_line, chunk.kind,
                           chunk.symbol, chunk.text))
            fts.append({"rowid": chunk_id, "path": ppath, "symbol": symbol, "body": body})
            chunk_id += 1
        symbols.extend(_symbol_rows(file_id, read.parsed))
        file_id += 1
    conn.executemany(
        "INSERT INTO files (id, corpus_id, path, blob_sha, size, mtime_ns, language, line_count,"
        " decode_errors, imports, identifiers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", files)
    conn.executemany("INSERT INTO chunks (id, file_id, start_line, end_line, kind, symbol, text)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?)", chunks)
    conn.executemany("INSERT INTO symbols (file_id, name, qualname, kind, start_line, end_line)"
                     " VALUES (?, ?, ?, ?, ?, ?)", symbols)
    insert_fts_rows(conn, corpus_id, fts)


def _next_id(conn: sqlite3.Connection, table: str) -> int:
    row = conn.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").fetchone()
    return int(row[0] or 1)


def _file_row(file_id: int, corpus_id: int, read: ReadFile) -> tuple[object, ...]:
    return (file_id, corpus_id, read.entry.path, read.blob_sha, read.entry.size,
            read.entry.mtime_ns, read.parsed.language, read.line_count, read.decode_errors,
            "\n".join(read.parsed.imports), " ".join(read.parsed.identifiers))


def symbol_field(symbol: str | None) -> str:
    """A chunk's symbol as its index field (dotted names as words; also for store copies)."""
    return expand_for_index(symbol.replace(".", " ")) if symbol else ""


def _symbol_rows(file_id: int, parsed: ParsedFile) -> Iterable[tuple[object, ...]]:
    for d in parsed.definitions:
        yield (file_id, d.name, d.qualname, d.kind, d.start_line, d.end_line)


def _totals(conn: sqlite3.Connection, corpus_id: int) -> tuple[int, int]:
    row = conn.execute(
        "SELECT (SELECT COUNT(*) FROM files WHERE corpus_id = :c), (SELECT COUNT(*) FROM chunks "
        "WHERE file_id IN (SELECT id FROM files WHERE corpus_id = :c))", {"c": corpus_id},
    ).fetchone()
    return int(row[0]), int(row[1])


def _stamp(conn: sqlite3.Connection, corpus_id: int, git: GitState | None,
           seconds: float) -> None:
    """Record when and at which commit the corpus was indexed."""
    conn.execute(
        "UPDATE corpora SET indexed_at = ?, index_seconds = ?, git_head = ?, git_remote = ? "
        "WHERE id = ?",
        (time.time(), seconds, git.head if git else None, git.remote if git else None,
         corpus_id))
