"""Incremental, blob-keyed indexing of a corpus into the store, in one write transaction."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sqlalchemy import Connection, delete, insert, select, text, update

from peek.db import Database
from peek.errors import CorpusError
from peek.gitutil import is_git_tree
from peek.retrieval.chunking import ParsedFile, language_for, parse_file
from peek.retrieval.lexical import (
    delete_fts_rows,
    ensure_fts,
    expand_for_index,
    insert_fts_rows,
    path_field,
)
from peek.retrieval.skipped import Skipped, load_skipped, still_skipped
from peek.retrieval.walk import (
    FileEntry,
    GitState,
    git_blob_sha,
    git_state,
    is_binary,
    walk_corpus,
)
from peek.safefs import SandboxError, read_beneath
from peek.schema import Chunk, Corpus, File, SkippedFile, Symbol

Progress = Callable[[int, int], None]
PARALLEL_MIN = 200
MAX_WORKERS = 4


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
    db: Database, root: Path, max_file_bytes: int, progress: Progress | None = None
) -> IndexStats:
    """Bring the store in line with the files under `root`, re-reading only what changed.

    Runs one at a time per store: an index plans from what the store knew before it started,
    so two concurrent runs would both insert the same new file.
    """
    with db.lock("index"):
        return _index(db, root, max_file_bytes, progress)


def _index(
    db: Database, root: Path, max_file_bytes: int, progress: Progress | None
) -> IndexStats:
    started = time.perf_counter()
    stats = IndexStats(corpus=str(root))
    report = walk_corpus(root, max_file_bytes)
    stats.skipped_large, stats.skipped_binary = len(report.too_large), report.binary_suffix
    stats.unreadable = report.unreadable
    if not report.files:
        raise CorpusError(f"no indexable files in {root}", "add text files or check .peekignore")
    corpus_id, known = _load_known(db, root)
    skipped = load_skipped(db, corpus_id)
    stats.first_index = not known
    todo = [e for e in report.files
            if not _unchanged(e, known.get(e.path)) and not still_skipped(e, skipped)]
    reads, touched, binary = _read_all(root, max_file_bytes, todo, known, stats, progress)
    still = {e.path for e in report.files if still_skipped(e, skipped)}
    present = {e.path for e in report.files} - set(binary) - still
    git = git_state(root)
    with db.write() as conn:
        corpus_id = _ensure_corpus(conn, root, corpus_id)
        _apply(conn, corpus_id, known, present, reads, touched, stats)
        _remember_skipped(conn, corpus_id, report.files, skipped, binary)
        stats.files, stats.chunks = _totals(conn, corpus_id)
        stats.seconds = time.perf_counter() - started
        _stamp(conn, corpus_id, git, stats.seconds)
    return stats


def _unchanged(entry: FileEntry, known: Known | None) -> bool:
    """Same size and mtime as when it was indexed: trust it without reading (as git does)."""
    return known is not None and known.size == entry.size and known.mtime_ns == entry.mtime_ns


def _remember_skipped(conn: Connection, corpus_id: int, files: list[FileEntry],
                      skipped: Skipped, binary: dict[str, str]) -> None:
    """Keep skipped files that are unchanged, add new ones, forget the rest."""
    by_path = {e.path: e for e in files}
    keep = {p for p in skipped if p in by_path and still_skipped(by_path[p], skipped)}
    conn.execute(delete(SkippedFile).where(SkippedFile.corpus_id == corpus_id,
                                           SkippedFile.path.not_in(keep)))
    rows = [{"corpus_id": corpus_id, "path": p, "size": by_path[p].size,
             "mtime_ns": by_path[p].mtime_ns, "reason": why} for p, why in binary.items()]
    if rows:
        conn.execute(insert(SkippedFile), rows)


def _load_known(db: Database, root: Path) -> tuple[int | None, dict[str, Known]]:
    with db.read() as conn:
        corpus_id = conn.scalar(select(Corpus.id).where(Corpus.root == str(root)))
        if corpus_id is None:
            return None, {}
        rows = conn.execute(
            select(File.path, File.id, File.blob_sha, File.size, File.mtime_ns).where(
                File.corpus_id == corpus_id
            )
        )
        return corpus_id, {r[0]: Known(r[1], r[2], r[3], r[4]) for r in rows}


def _read_all(
    root: Path, max_bytes: int, todo: list[FileEntry], known: dict[str, Known],
    stats: IndexStats, progress: Progress | None,
) -> tuple[list[ReadFile], list[tuple[int, FileEntry]], dict[str, str]]:
    """Read and parse new or changed files; a same-blob file only gets its stat refreshed."""
    reads: list[ReadFile] = []
    touched: list[tuple[int, FileEntry]] = []
    binary: dict[str, str] = {}
    jobs = [(root, max_bytes, e, known[e.path].blob_sha if e.path in known else None)
            for e in todo]
    for n, (entry, outcome) in enumerate(_run_jobs(jobs), 1):
        if isinstance(outcome, ReadFile):
            reads.append(outcome)
        elif outcome == "same":
            touched.append((known[entry.path].id, entry))
        else:
            binary[entry.path] = outcome
            if outcome == "binary":
                stats.skipped_binary += 1
            else:
                stats.unreadable.append(entry.path)
        if progress is not None:
            progress(n, len(todo))
    stats.decode_errors = sum(r.decode_errors for r in reads)
    return reads, touched, binary


Job = tuple[Path, int, FileEntry, str | None]


def _run_jobs(jobs: list[Job]) -> Iterator[tuple[FileEntry, Outcome]]:
    """Parse on every core for big batches (tree-sitter parsing dominates a cold index).

    Workers start from a fork server, never by forking this process: the MCP server indexes
    from a worker thread, and forking a threaded process can copy a held lock.
    """
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    if len(jobs) < PARALLEL_MIN or workers < 2:
        yield from ((job[2], _read_one_job(job)) for job in jobs)
        return
    methods = mp.get_all_start_methods()
    context = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        outcomes = pool.map(_read_one_job, jobs, chunksize=32)
        yield from zip((job[2] for job in jobs), outcomes, strict=True)


def _read_one_job(job: Job) -> Outcome:
    return _read_one(*job)


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
    try:
        body, errors = data.decode("utf-8"), 0
    except UnicodeDecodeError:
        body = data.decode("utf-8", errors="replace")
        errors = body.count("\ufffd")
    parsed = parse_file(entry.path, body, language_for(entry.path))
    lines = body.count("\n") + (0 if body.endswith("\n") or not body else 1)
    return ReadFile(entry, sha, parsed, lines, errors)


def _ensure_corpus(conn: Connection, root: Path, corpus_id: int | None) -> int:
    if corpus_id is not None:
        return corpus_id
    found = conn.scalar(select(Corpus.id).where(Corpus.root == str(root)))
    if found is not None:
        return int(found)
    kind = "git" if is_git_tree(root) else "folder"
    values = {"root": str(root), "kind": kind, "created_at": time.time()}
    key = conn.execute(insert(Corpus).values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def _apply(
    conn: Connection,
    corpus_id: int,
    known: dict[str, Known],
    present: set[str],
    reads: list[ReadFile],
    touched: list[tuple[int, FileEntry]],
    stats: IndexStats,
) -> None:
    """Drop vanished files, refresh stats of same-blob files, and rewrite changed ones."""
    ensure_fts(conn, corpus_id)
    changed = [r for r in reads if r.entry.path in known]
    gone = [k.id for p, k in known.items() if p not in present]
    delete_fts_rows(conn, corpus_id, gone + [known[r.entry.path].id for r in changed])
    for start in range(0, len(gone), 500):
        conn.execute(delete(File).where(File.id.in_(gone[start : start + 500])))
    stats.removed = len(gone)
    for file_id, entry in touched:
        conn.execute(
            update(File).where(File.id == file_id).values(mtime_ns=entry.mtime_ns, size=entry.size)
        )
    stats.changed, stats.added = len(changed), len(reads) - len(changed)
    if changed:
        conn.execute(delete(File).where(File.id.in_([known[r.entry.path].id for r in changed])))
    _insert_files(conn, corpus_id, reads)


def _insert_files(conn: Connection, corpus_id: int, reads: list[ReadFile]) -> None:
    """Insert files, chunks, symbols and FTS rows with ids assigned here, in bulk."""
    if not reads:
        return
    file_id = _next_id(conn, "files")
    chunk_id = _next_id(conn, "chunks")
    files: list[dict[str, object]] = []
    chunks: list[dict[str, object]] = []
    symbols: list[dict[str, object]] = []
    fts: list[dict[str, object]] = []
    for read in reads:
        files.append(_file_row(file_id, corpus_id, read))
        ppath = path_field(read.entry.path)
        for chunk in read.parsed.chunks:
            chunks.append({"id": chunk_id, "file_id": file_id, "start_line": chunk.start_line,
                           "end_line": chunk.end_line, "kind": chunk.kind,
                           "symbol": chunk.symbol, "text": chunk.text})
            fts.append({"rowid": chunk_id, "path": ppath, "symbol": _symbol_field(chunk.symbol),
                        "body": expand_for_index(chunk.text)})
            chunk_id += 1
        symbols.extend(_symbol_rows(file_id, read.parsed))
        file_id += 1
    conn.execute(insert(File), files)
    _bulk(conn, Chunk, chunks)
    _bulk(conn, Symbol, symbols)
    insert_fts_rows(conn, corpus_id, fts)


def _bulk(
    conn: Connection, table: type[Chunk] | type[Symbol], rows: list[dict[str, object]]
) -> None:
    if rows:
        conn.execute(insert(table), rows)


def _next_id(conn: Connection, table: str) -> int:
    return int(conn.scalar(text(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")) or 1)


def _file_row(file_id: int, corpus_id: int, read: ReadFile) -> dict[str, object]:
    return {
        "id": file_id, "corpus_id": corpus_id, "path": read.entry.path,
        "blob_sha": read.blob_sha, "size": read.entry.size, "mtime_ns": read.entry.mtime_ns,
        "language": read.parsed.language, "line_count": read.line_count,
        "decode_errors": read.decode_errors, "imports": "\n".join(read.parsed.imports),
        "identifiers": " ".join(read.parsed.identifiers),
    }


def _symbol_field(symbol: str | None) -> str:
    return expand_for_index(symbol.replace(".", " ")) if symbol else ""


def _symbol_rows(file_id: int, parsed: ParsedFile) -> Iterable[dict[str, object]]:
    for d in parsed.definitions:
        yield {"file_id": file_id, "name": d.name, "qualname": d.qualname, "kind": d.kind,
               "start_line": d.start_line, "end_line": d.end_line}


def _totals(conn: Connection, corpus_id: int) -> tuple[int, int]:
    row = conn.execute(
        text("SELECT COUNT(DISTINCT f.id), COUNT(c.id) FROM files f "
             "LEFT JOIN chunks c ON c.file_id = f.id WHERE f.corpus_id = :c"),
        {"c": corpus_id},
    ).one()
    return int(row[0]), int(row[1])


def _stamp(conn: Connection, corpus_id: int, git: GitState | None, seconds: float) -> None:
    """Record when and at which commit the corpus was indexed."""
    conn.execute(
        update(Corpus).where(Corpus.id == corpus_id).values(
            indexed_at=time.time(), index_seconds=seconds,
            git_head=git.head if git else None, git_remote=git.remote if git else None,
        )
    )
