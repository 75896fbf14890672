"""Finding definitions without an index: line regexes for Python, JavaScript/TypeScript and Go."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

from peek.blobs import is_binary
from peek.retrieval.walk import iter_files
from peek.safefs import read_beneath

from .errors import SandboxError
from .results import SymbolHit
from .textfile import decode_utf8, split_lines

SymbolLookup = Callable[[str], list[SymbolHit]]

_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*")
_END = r"(?![\w$])"
_EXPORT = r"(?:export[ \t]+)?(?:default[ \t]+)?"
_ASYNC = r"(?:async[ \t]+)?"
_TEMPLATES: dict[str, tuple[tuple[str, str], ...]] = {
    "python": (
        ("class", r"[ \t]*class[ \t]+{name}" + _END),
        ("function", r"[ \t]*(?:async[ \t]+)?def[ \t]+{name}" + _END),
    ),
    "js": (
        ("function", r"[ \t]*" + _EXPORT + _ASYNC + r"function\b[ \t]*\*?[ \t]*{name}" + _END),
        ("class", r"[ \t]*" + _EXPORT + r"(?:abstract[ \t]+)?class[ \t]+{name}" + _END),
        ("variable", r"[ \t]*(?:export[ \t]+)?(?:const|let|var)[ \t]+{name}[ \t]*(?::[^=]*)?="),
    ),
    "go": (
        ("function", r"func[ \t]+{name}" + _END),
        ("method", r"func[ \t]*\([^)]*\)[ \t]*{name}" + _END),
        ("type", r"type[ \t]+{name}" + _END),
    ),
}
_LANGUAGES = {
    ".py": "python",
    ".pyi": "python",
    ".go": "go",
    ".js": "js",
    ".jsx": "js",
    ".mjs": "js",
    ".cjs": "js",
    ".ts": "js",
    ".tsx": "js",
}
_BRACE_SEARCH_LINES = 10


def bare_identifier(name: str) -> str:
    """Reduce `Class.method` to `method` and refuse names no definition regex could match."""
    if not isinstance(name, str) or not name.strip():
        raise SandboxError("find_symbol needs a non-empty name such as 'parse_args'")
    bare = name.strip().rsplit(".", 1)[-1]
    if not _IDENTIFIER.fullmatch(bare):
        raise SandboxError(
            f"{name!r} is not an identifier; pass a function, class or type name, or use grep"
        )
    return bare


def regex_symbols(root: Path, name: str, limit: int, max_file_bytes: int) -> list[SymbolHit]:
    """Scan source files for definitions of `name`, in path order, stopping after `limit` hits."""
    compiled = _compile(name)
    hits: list[SymbolHit] = []
    for entry in iter_files(root, with_stat=False):
        language = _LANGUAGES.get(Path(entry.path).suffix)
        if entry.is_symlink or language is None:
            continue
        lines = _source_lines(root, entry.fs_rel, entry.path, max_file_bytes)
        hits.extend(_scan(lines, entry.path, name, compiled[language], language))
        if len(hits) >= limit:
            break
    return hits[:limit]


def _compile(name: str) -> dict[str, list[tuple[str, re.Pattern[str]]]]:
    escaped = re.escape(name)
    return {
        language: [(kind, re.compile(pattern.replace("{name}", escaped))) for kind, pattern in rows]
        for language, rows in _TEMPLATES.items()
    }


def _source_lines(root: Path, fs_rel: str, rel: str, max_file_bytes: int) -> list[str]:
    try:
        data = read_beneath(root, fs_rel, max_file_bytes, rel)
    except SandboxError:
        return []
    return [] if is_binary(data) else split_lines(decode_utf8(data).text)


def _scan(
    lines: list[str],
    rel: str,
    name: str,
    patterns: list[tuple[str, re.Pattern[str]]],
    language: str,
) -> Iterator[SymbolHit]:
    block_end = _python_block_end if language == "python" else _brace_block_end
    for index, line in enumerate(lines):
        if name not in line:
            continue
        kind = next((kind for kind, regex in patterns if regex.match(line)), None)
        if kind is not None:
            yield SymbolHit(rel, name, kind, index + 1, block_end(lines, index))


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _python_block_end(lines: list[str], start: int) -> int:
    """Last line of an indented block: the last line before one that is not indented deeper."""
    indent, end = _indent(lines[start]), start
    for index in range(start + 1, len(lines)):
        stripped = lines[index].strip()
        if not stripped:
            continue
        if _indent(lines[index]) <= indent and stripped[0] not in ")]}":
            break
        end = index
    return end + 1


def _brace_block_end(lines: list[str], start: int) -> int:
    """Line of the brace closing the block opened near `start`; `start` itself when none opens."""
    depth, opened = 0, False
    for index in range(start, len(lines)):
        depth, opened = _count_braces(lines[index], depth, opened)
        if opened and depth <= 0:
            return index + 1
        if not opened and _ends_statement(lines[index], index - start):
            return start + 1
    return start + 1


def _count_braces(line: str, depth: int, opened: bool) -> tuple[int, bool]:
    for char in line:
        if char == "{":
            depth, opened = depth + 1, True
        elif char == "}":
            depth -= 1
    return depth, opened


def _ends_statement(line: str, offset: int) -> bool:
    stripped = line.strip()
    return (
        not stripped
        or stripped.endswith(";")
        or offset >= _BRACE_SEARCH_LINES
        or (offset == 0 and not stripped.endswith(("(", ",", "=", "=>")))
    )

