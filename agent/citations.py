"""Citations: find `path:start-end` in an answer, and keep only what the corpus really backs.

A model may cite a file it never read, a line past the end, or a path outside the corpus; a
citation printed to a person must point at lines that exist in an indexed file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from peek.contextmap.citation import Citation
from peek.safefs import read_beneath
from peek.sandbox import SandboxError
from peek.sandbox.paths import resolve_in_root

if TYPE_CHECKING:
    from peek.agent.workspace import Workspace

_CITATION = re.compile(
    r"(?<![\w./\\-])"  # a path starts a token
    r"(?!\d+(?::|#L))"  # not a time such as 10:30
    r"(?P<path>/?(?:\./)?[\w-][\w.\-/]*)"
    r"(?::L?|#L)(?P<start>\d+)"
    r"(?:[ \t]?[-\u2013\u2014][ \t]?L?(?P<end>\d+))?"
    r"(?!\d)"
)


def extract_citations(text: str) -> list[Citation]:
    """Every `path:start-end`, `path:line` or `path#Lstart-Lend` in `text`, once, in order."""
    found: dict[Citation, None] = {}
    for m in _CITATION.finditer(text):
        start = int(m["start"])
        end = int(m["end"]) if m["end"] else start
        found.setdefault(Citation(m["path"], start, end), None)
    return list(found)


def verify_citations(
    peek: Workspace, citations: Iterable[Citation]
) -> tuple[list[Citation], list[Citation]]:
    """(kept, dropped): kept citations name an indexed file in the root and lines it has."""
    wanted = list(citations)
    indexed = _indexed_paths(peek, {_relative(peek.root, c.path) or "" for c in wanted})
    counts: dict[str, int | None] = {}
    kept: dict[Citation, None] = {}
    dropped: list[Citation] = []
    for citation in wanted:
        checked = _check(peek.root, citation, indexed, counts)
        if checked is None:
            dropped.append(citation)
        else:
            kept.setdefault(checked, None)
    return list(kept), dropped


def _check(root: Path, citation: Citation, indexed: set[str],
           counts: dict[str, int | None]) -> Citation | None:
    """The citation as printed (relative path, end clamped), or None when it is not backed."""
    rel = _relative(root, citation.path)
    if rel is None or rel not in indexed:
        return None
    if rel not in counts:
        counts[rel] = _line_count(root, rel)
    total = counts[rel]
    start, end = citation.start_line, citation.end_line
    if total is None or start < 1 or start > total or end < start:
        return None
    return Citation(rel, start, min(end, total))


def _relative(root: Path, path: str) -> str | None:
    """The corpus-relative POSIX form of a cited path; None for absolute paths outside root."""
    pure = PurePosixPath(path)
    if pure.is_absolute():
        try:
            pure = PurePosixPath(Path(path).relative_to(root).as_posix())
        except ValueError:
            return None
    rel = pure.as_posix()
    return None if rel in ("", ".") else rel


def _indexed_paths(peek: Workspace, paths: set[str]) -> set[str]:
    """Which of `paths` the index recorded (with their blobs) for this corpus."""
    if not paths:
        return set()
    names = {f"p{i}": p for i, p in enumerate(sorted(paths))}
    sql = (f"SELECT path FROM files WHERE corpus_id = :c "
           f"AND path IN ({', '.join(':' + n for n in names)})")
    with peek.db.query() as conn:
        return {r[0] for r in conn.execute(sql, {"c": peek.corpus_id, **names})}


def _line_count(root: Path, rel: str) -> int | None:
    """Lines of the file as read_file numbers them; None when gone, outside, excluded or too big.

    Read through the sandbox's race-free reader with the one size cap for every read.
    """
    from peek.config import max_file_bytes

    try:
        resolve_in_root(root, rel)
        data = read_beneath(root, rel, max_file_bytes())
    except (SandboxError, OSError):
        return None
    return data.count(b"\n") + (not data.endswith(b"\n") and bool(data))
