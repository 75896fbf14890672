"""Tool results: frozen dataclasses whose `to_dict()` gives plain JSON types for agents and MCP."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class ToolResult:
    """Base of every tool result."""

    def to_dict(self) -> dict[str, Any]:
        """Convert to dicts, lists, strings, numbers and None so the result can go out as JSON."""
        plain: dict[str, Any] = _plain(dataclasses.asdict(self))
        return plain


@dataclass(frozen=True)
class DirEntry(ToolResult):
    """One entry of a folder; `kind` is file, dir, symlink or other; `size` only for files."""

    name: str
    kind: str
    size: int | None


@dataclass(frozen=True)
class DirListing(ToolResult):
    """A folder's entries sorted by name; `total` counts all of them even when cut."""

    path: str
    entries: tuple[DirEntry, ...]
    total: int
    truncated: bool
    note: str | None = None


@dataclass(frozen=True)
class FileSlice(ToolResult):
    """Lines `start`..`end` (1-based, inclusive) of a text file, each prefixed with its number."""

    path: str
    start: int
    end: int
    total_lines: int
    text: str
    truncated: bool
    decode_errors: int = 0
    note: str | None = None


@dataclass(frozen=True)
class GrepMatch(ToolResult):
    """A matching line: where it is and its text (cut around the match when very long)."""

    path: str
    line: int
    column: int
    text: str


@dataclass(frozen=True)
class GrepResult(ToolResult):
    """Matches sorted by path then line; `backend` says whether ripgrep or Python searched."""

    pattern: str
    matches: tuple[GrepMatch, ...]
    truncated: bool
    backend: str
    note: str | None = None


@dataclass(frozen=True)
class GlobResult(ToolResult):
    """Relative paths of the files a glob matched, in path order."""

    pattern: str
    paths: tuple[str, ...]
    truncated: bool
    note: str | None = None


@dataclass(frozen=True)
class SymbolHit(ToolResult):
    """Where a symbol is defined: file, name, kind (function, class, ...) and its line span."""

    path: str
    name: str
    kind: str
    start_line: int
    end_line: int


@dataclass(frozen=True)
class SymbolResult(ToolResult):
    """Definitions found for a name; `source` is index (symbol_lookup) or regex (fallback)."""

    name: str
    hits: tuple[SymbolHit, ...]
    truncated: bool
    source: str
    note: str | None = None
