"""FileTools: the read-only tools an agent or MCP server gets, all confined to one corpus root."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from peek.blobs import is_binary
from peek.retrieval.walk import IgnoreRules, iter_files
from peek.safefs import open_beneath, read_fd

from .errors import SandboxError
from .paths import check_served, real_root, resolve_in_root
from .results import (
    DirEntry,
    DirListing,
    FileSlice,
    GlobResult,
    GrepMatch,
    GrepResult,
    SymbolHit,
    SymbolResult,
    ToolResult,
)
from .ripgrep import find_ripgrep
from .specs import check_args
from .symbols import SymbolLookup, bare_identifier, regex_symbols
from .textfile import DecodedText, decode_utf8, split_lines

if TYPE_CHECKING:  # grep and glob load the `regex` engine on first use, not with every read
    from .globs import PathFilter
    from .grep import GrepQuery, SearchOutcome

T = TypeVar("T")
_MIN_NUMBER_WIDTH = 4


class FileTools:
    """Read-only file tools (list, read, grep, glob, find symbol) that never leave `root`."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        max_output_chars: int = 20_000,
        max_results: int = 200,
        max_file_bytes: int = 1024 * 1024,
        symbol_lookup: SymbolLookup | None = None,
        use_ripgrep: bool | None = None,
        grep_timeout: float = 10.0,
    ) -> None:
        self.root = real_root(root)
        self.max_output_chars = _positive("max_output_chars", max_output_chars)
        self.max_results = _positive("max_results", max_results)
        self.max_file_bytes = _positive("max_file_bytes", max_file_bytes)
        self.symbol_lookup = symbol_lookup
        self.grep_timeout = _positive("grep_timeout", grep_timeout)
        self.ripgrep = _pick_ripgrep(use_ripgrep)

    def resolve(self, path: str) -> Path:
        """Confine a caller's path: its real path in the root, or a SandboxError saying why not."""
        return resolve_in_root(self.root, path)

    def list_dir(self, path: str = ".") -> DirListing:
        """Show what one folder holds, so an agent can orient itself before reading files."""
        rules = IgnoreRules(self.root)
        with open_beneath(self.root, path, "dir") as opened:
            check_served(self.root, opened, path, rules)
            rel = opened.rel
            entries = [_dir_entry(e) for e in _listing(opened.fd, rel, rules)]
        kept, reason = take_within(entries, self.max_results, self.max_output_chars, _entry_size)
        note = None
        if reason:
            note = f"showing {len(kept)} of {len(entries)} entries ({reason}); use glob to narrow"
        return DirListing(rel, tuple(kept), len(entries), reason is not None, note)

    def read_file(self, path: str, start: int | None = None, end: int | None = None) -> FileSlice:
        """Show numbered lines of a text file, so an agent can quote and cite exact lines."""
        rel, decoded = self._read_text(path)
        lines = split_lines(decoded.text)
        if not lines and start in (None, 1):
            return FileSlice(rel, 0, 0, 0, "", False, decoded.decode_errors, "the file is empty")
        first, last = _line_range(start, end, len(lines), path)
        text, shown, cut = number_lines(lines[first - 1 : last], first, self.max_output_chars)
        note = _slice_note(cut, first, shown, len(lines), self.max_output_chars) if cut else None
        truncated = cut is not None
        errors = decoded.decode_errors
        return FileSlice(rel, first, shown, len(lines), text, truncated, errors, note)

    def grep(
        self,
        pattern: str,
        glob: str | None = None,
        *,
        ignore_case: bool = False,
        max_results: int | None = None,
    ) -> GrepResult:
        """Find the lines matching a regex across the corpus, so an agent knows what to read."""
        from .grep import GrepQuery, compile_pattern

        limit = self.max_results if max_results is None else _positive("max_results", max_results)
        regex = compile_pattern(pattern, ignore_case)
        query = GrepQuery(
            pattern, regex, _path_filter(glob), limit + 1, self.max_file_bytes, self.grep_timeout
        )
        outcome = self._search(query)
        matches = sorted(outcome.matches, key=lambda m: (path_sort_key(m.path), m.line))
        kept, reason = take_within(matches, limit, self.max_output_chars, _match_size)
        if outcome.timed_out:
            reason = f"search timed out after {self.grep_timeout:g}s, results are partial"
        note = f"{reason}; narrow the pattern or add a glob such as '*.py'" if reason else None
        return GrepResult(pattern, tuple(kept), reason is not None, outcome.backend, note)

    def glob(self, pattern: str) -> GlobResult:
        """Find files by path pattern, so an agent can locate files without listing every folder."""
        from .globs import compile_glob, normalize_tool_glob

        normalized = normalize_tool_glob(pattern)
        matcher = compile_glob(normalized)
        found = (entry.path for entry in iter_files(self.root, with_stat=False)
                 if matcher.fullmatch(entry.path))
        kept, reason = take_within(found, self.max_results, self.max_output_chars, _path_size)
        note = f"{reason}; use a narrower pattern such as 'src/**/*.py'" if reason else None
        return GlobResult(pattern, tuple(kept), reason is not None, note)

    def find_symbol(self, name: str) -> SymbolResult:
        """Jump to where a name is defined, cheaper than grepping for every mention of it."""
        hits, source = self._symbol_hits(name)
        hits = sorted(hits, key=lambda hit: (path_sort_key(hit.path), hit.start_line))
        kept, reason = take_within(hits, self.max_results, self.max_output_chars, _hit_size)
        note = f"{reason}; use a more specific name" if reason else None
        if not hits:
            note = f"no definition of {name.strip()!r} found; try grep to find mentions"
        return SymbolResult(name.strip(), tuple(kept), reason is not None, source, note)

    def call(self, name: str, args: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run a tool by name with JSON arguments: the single entry point for agents and MCP."""
        kwargs = check_args(name, {} if args is None else args)
        return self._handlers()[name](**kwargs).to_dict()

    def _handlers(self) -> dict[str, Callable[..., ToolResult]]:
        return {
            "list_dir": self.list_dir,
            "read_file": self.read_file,
            "grep": self.grep,
            "glob": self.glob,
            "find_symbol": self.find_symbol,
        }

    def _read_text(self, path: str) -> tuple[str, DecodedText]:
        with open_beneath(self.root, path, "file") as opened:
            check_served(self.root, opened, path, None)
            data = read_fd(opened.fd, opened.info, self.max_file_bytes, path)
            rel = opened.rel
        if is_binary(data):
            raise SandboxError(
                f"{path!r} looks binary (NUL byte in its first 8 KiB); "
                "only text files can be read"
            )
        return rel, decode_utf8(data)

    def _search(self, query: GrepQuery) -> SearchOutcome:
        from .grep import python_search, ripgrep_search

        if self.ripgrep is not None:
            try:
                outcome = ripgrep_search(self.ripgrep, self.root, query)
            except OSError:
                outcome = None
            if outcome is not None:
                return outcome
        return python_search(self.root, query)

    def _symbol_hits(self, name: str) -> tuple[list[SymbolHit], str]:
        if not isinstance(name, str) or not name.strip():
            raise SandboxError("find_symbol needs a non-empty name such as 'parse_args'")
        if self.symbol_lookup is not None:
            return list(self.symbol_lookup(name.strip())), "index"
        limit = self.max_results + 1
        hits = regex_symbols(self.root, bare_identifier(name), limit, self.max_file_bytes)
        return hits, "regex"


def take_within(
    items: Iterable[T], max_items: int, max_chars: int, size: Callable[[T], int]
) -> tuple[list[T], str | None]:
    """Cap a result list by count and by output size; the reason says which cap cut it, if any."""
    kept: list[T] = []
    used = 0
    for item in items:
        if len(kept) >= max_items:
            return kept, f"stopped after {max_items} results"
        used += size(item)
        if used > max_chars and kept:
            return kept, f"output cut at {max_chars} characters"
        kept.append(item)
    return kept, None


def number_lines(lines: list[str], first: int, max_chars: int) -> tuple[str, int, str | None]:
    """Prefix lines with numbers up to `max_chars`; say if it cut between lines or inside one."""
    width = max(_MIN_NUMBER_WIDTH, len(str(first + len(lines) - 1)))
    rows: list[str] = []
    used = 0
    for number, line in enumerate(lines, start=first):
        row = f"{number:>{width}}| " + line.rstrip("\r")
        used += len(row) + 1
        if used > max_chars + 1 and rows:
            return "\n".join(rows), number - 1, "between"
        if used > max_chars + 1:
            return row[:max_chars], number, "inside"
        rows.append(row)
    return "\n".join(rows), first + len(rows) - 1, None


def _positive(name: str, value: T) -> T:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise SandboxError(f"{name} must be a positive number, got {value!r}")
    return value


def _pick_ripgrep(use_ripgrep: bool | None) -> str | None:
    if use_ripgrep is False:
        return None
    found = find_ripgrep()
    if use_ripgrep and found is None:
        raise SandboxError(
            "use_ripgrep=True but no rg binary was found; install the 'ripgrep' package "
            "or leave use_ripgrep unset"
        )
    return found


def _path_filter(glob: str | None) -> PathFilter | None:
    from .globs import PathFilter, refuse_parent

    if glob is None or (isinstance(glob, str) and not glob.strip()):
        return None
    if not isinstance(glob, str) or "\0" in glob:
        raise SandboxError("glob must be a plain string such as '*.py'")
    refuse_parent(glob.strip())
    return PathFilter(glob.strip())


def _line_range(start: int | None, end: int | None, total: int, path: str) -> tuple[int, int]:
    first = 1 if start is None else _line_number("start", start)
    last = total if end is None else _line_number("end", end)
    if first > total:
        raise SandboxError(
            f"start {first} is past the end of {path!r}, which has {total} lines; "
            f"use a start between 1 and {max(total, 1)}"
        )
    if last < first:
        raise SandboxError(f"end {last} is before start {first}; pass end >= start")
    return first, min(last, total)


def _line_number(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SandboxError(f"{name} must be a line number >= 1, got {value!r}")
    return value


def _slice_note(cut: str, first: int, shown: int, total: int, max_chars: int) -> str:
    if cut == "inside":
        more = f"; continue with start={shown + 1}" if shown < total else ""
        return f"line {shown} is over the {max_chars}-character output limit and was cut{more}"
    return (
        f"output cut at {max_chars} characters: showing lines {first}-{shown} of {total}; "
        f"call read_file with start={shown + 1} to read on"
    )


def path_sort_key(rel: str) -> tuple[str, ...]:
    """Order paths as a sorted depth-first walk does, so `a/x` comes before `a.txt`."""
    return tuple(rel.split("/"))


def _listing(fd: int, rel: str, rules: IgnoreRules) -> list[os.DirEntry[str]]:
    """A folder's entries by name, without those the corpus excludes."""
    prefix = "" if rel == "." else rel + "/"
    try:
        with os.scandir(fd) as found:
            entries = sorted(found, key=lambda entry: entry.name)
    except OSError as err:
        raise SandboxError(f"cannot list {rel!r} ({err.strerror}); pick another folder") from err
    return [e for e in entries if not rules.excluded(prefix + e.name, _is_dir(e))]


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _dir_entry(entry: os.DirEntry[str]) -> DirEntry:
    try:
        if entry.is_symlink():
            return DirEntry(entry.name, "symlink", None)
        if entry.is_dir(follow_symlinks=False):
            return DirEntry(entry.name, "dir", None)
        if entry.is_file(follow_symlinks=False):
            return DirEntry(entry.name, "file", entry.stat(follow_symlinks=False).st_size)
    except OSError:
        pass
    return DirEntry(entry.name, "other", None)


def _entry_size(entry: DirEntry) -> int:
    return len(entry.name) + 40


def _match_size(match: GrepMatch) -> int:
    return len(match.path) + len(match.text) + 40


def _path_size(path: str) -> int:
    return len(path) + 4


def _hit_size(hit: SymbolHit) -> int:
    return len(hit.path) + len(hit.name) + len(hit.kind) + 60
