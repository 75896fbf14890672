"""Anchors from an entry's words: the `path:start-end` references and symbols a person wrote.

When someone corrects an entry (`peek map edit ID "text"`), the places the new text names are
the evidence, not the ones the old text had; so the anchors are re-derived from the text.
"""

from __future__ import annotations

import re

from peek.contextmap.freshness import CorpusView
from peek.contextmap.model import Anchor
from peek.db import driver

_REF = re.compile(r"(?<![\w/.-])([\w.-]+(?:/[\w.-]+)*\.[A-Za-z0-9]+|[\w.-]+(?:/[\w.-]+)+)"
                  r"(?::(\d+)(?:-(\d+))?)?")
_SYMBOL = re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\b")
MAX_SYMBOL_FILES = 3
MAX_ANCHORS = 6
_SYMBOL_SQL = (
    "SELECT f.path, s.start_line, s.end_line FROM symbols s JOIN files f ON f.id = s.file_id "
    "WHERE f.corpus_id = :c AND (s.qualname = :n OR (s.name = :n AND instr(:n, '.') = 0)) "
    "ORDER BY length(s.qualname), f.path LIMIT :lim")
_SUFFIX_SQL = ("SELECT path FROM files WHERE corpus_id = :c "
               "AND (path = :p OR path LIKE :s ESCAPE '\\') ORDER BY length(path) LIMIT 2")


def anchors_from_text(entry_text: str, view: CorpusView) -> tuple[Anchor, ...]:
    """Anchors for every corpus file span and defined symbol the text names, in text order."""
    found: dict[tuple[str, int, int], Anchor] = {}
    for anchor in [*_path_refs(entry_text, view), *_symbol_refs(entry_text, view)]:
        found.setdefault((anchor.path, anchor.start_line, anchor.end_line), anchor)
    return tuple(found.values())[:MAX_ANCHORS]


def _path_refs(entry_text: str, view: CorpusView) -> list[Anchor]:
    out: list[Anchor] = []
    for match in _REF.finditer(entry_text):
        path = _resolve(match.group(1), view)
        if path is None:
            continue
        lines = view.line_count(path)
        start = min(int(match.group(2) or 1), lines)
        end = min(int(match.group(3) or (match.group(2) or lines)), lines)
        out.append(Anchor(path, start, max(start, end), view.current_blob(path) or ""))
    return out


def _resolve(raw: str, view: CorpusView) -> str | None:
    """A named path as an indexed corpus path: exact, else a unique path ending with it."""
    path = view.normalize(raw)
    if not path or view.file(path) is not None:
        return path or None
    rows = [r[0] for r in driver(view.conn).execute(
        _SUFFIX_SQL, {"c": view.corpus_id, "p": path, "s": "%/" + _like(path)})]
    return rows[0] if len(rows) == 1 else None


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _symbol_refs(entry_text: str, view: CorpusView) -> list[Anchor]:
    out: list[Anchor] = []
    for name in dict.fromkeys(_SYMBOL.findall(_without_paths(entry_text, view))):
        if not _codey(name):
            continue
        rows = list(driver(view.conn).execute(_SYMBOL_SQL, {"c": view.corpus_id, "n": name,
                                                            "lim": MAX_SYMBOL_FILES + 1}))
        if 0 < len(rows) <= MAX_SYMBOL_FILES:
            out.extend(Anchor(p, s, e, view.current_blob(p) or "") for p, s, e in rows)
    return out


def _without_paths(entry_text: str, view: CorpusView) -> str:
    """The text with its corpus paths removed; a dotted name that is no file (such as
    `Option.resolve_envvar_value`, which looks like `name.ext`) stays to be read as a symbol."""
    return _REF.sub(lambda m: " " if _resolve(m.group(1), view) else m.group(0), entry_text)


def _codey(name: str) -> bool:
    """Only names that look like code (dotted, snake_case, CamelCase) become symbol anchors."""
    camel = name[:1].isupper() and name[1:] != name[1:].lower()
    return "." in name or "_" in name.strip("_") or camel
