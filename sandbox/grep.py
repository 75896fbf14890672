"""Searching file contents: ripgrep over the corpus's files when present, else a Python scan.

Both backends search exactly the files the corpus walker yields (ignore files and secrets rules
honoured). Every pattern runs under a real time limit: the `regex` engine takes a timeout that
interrupts a match mid-line (look-around and backtracking patterns included), and rg is killed
when time runs out. rg's matches are re-checked against the file read through the race-free
reader, so a file swapped for a symlink after the walk can never put outside text in a result.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import subprocess
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex

from peek.blobs import is_binary
from peek.retrieval.walk import FileEntry, IgnoreRules, iter_files

from .errors import SandboxError
from .globs import PathFilter
from .results import GrepMatch
from .ripgrep import find_ripgrep as find_ripgrep  # where tests and callers looked for it
from .textfile import decode_utf8, split_lines

LINE_CHARS = 300
MAX_PATTERN_CHARS = 2000
_CHARS_BEFORE_MATCH = 100
_ARGV_BYTES = 64 * 1024
_NO_PREFILTER = ("(?!", "(?<!", "\\A", "\\Z", "\\z", "\\G", "(?|", "(?(")
_RG_FLAGS = (
    "--json", "--no-config", "--no-ignore", "--no-messages", "--sort", "path", "--hidden",
    "--no-follow",
)  # fmt: skip


@dataclass(frozen=True)
class GrepQuery:
    """Everything both backends need to run one search the same way."""

    pattern: str
    regex: regex.Pattern[str]
    path_filter: PathFilter | None
    limit: int
    max_file_bytes: int
    timeout: float

    @property
    def whole(self) -> regex.Pattern[str] | None:
        """The pattern over a whole file (MULTILINE), to skip files with no possible match.

        Any line it matches on its own it also matches inside the file, except with anchors
        to the string's ends or negative look-around, which then get no prefilter.
        """
        if any(token in self.pattern for token in _NO_PREFILTER):
            return None
        return _whole(self.pattern, self.regex.flags)


@dataclass(frozen=True)
class SearchOutcome:
    """Matches in path order (at most `limit`), the backend that found them, and if time ran out."""

    matches: list[GrepMatch]
    backend: str
    timed_out: bool = False


def compile_pattern(pattern: str, ignore_case: bool) -> regex.Pattern[str]:
    """Validate the regex with Python's rules (the `regex` engine, re-compatible V0 syntax)."""
    if not isinstance(pattern, str) or not pattern:
        raise SandboxError("grep needs a non-empty regex pattern, e.g. 'def main'")
    if len(pattern) > MAX_PATTERN_CHARS or "\0" in pattern:
        raise SandboxError(
            f"grep pattern is over {MAX_PATTERN_CHARS} characters or has a NUL byte; "
            "search for a shorter, distinctive part"
        )
    flags = regex.V0 | (regex.IGNORECASE if ignore_case else 0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return regex.compile(pattern, flags)
    except (regex.error, OverflowError, RecursionError) as err:
        where = getattr(err, "pos", None)
        raise SandboxError(
            f"invalid regex {pattern!r}: {getattr(err, 'msg', err)}"
            + (f" at position {where}" if where is not None else "")
            + "; escape special characters such as ( [ { . * + ? with a backslash"
        ) from err


@functools.lru_cache(maxsize=32)
def _whole(pattern: str, flags: int) -> regex.Pattern[str] | None:
    try:
        return regex.compile(pattern, flags | regex.MULTILINE)
    except (regex.error, OverflowError, RecursionError):
        return None


def corpus_files(root: Path, path_filter: PathFilter | None) -> Iterator[FileEntry]:
    """The files grep may search: the corpus walk, narrowed by the glob, symlinks left out."""
    for entry in iter_files(root, IgnoreRules(root), with_stat=False):
        if entry.is_symlink or not _kept(path_filter, entry.path):
            continue
        yield entry


def _kept(path_filter: PathFilter | None, rel: str) -> bool:
    if path_filter is None:
        return True
    parts = rel.split("/")
    for depth in range(1, len(parts)):
        if path_filter.verdict("/".join(parts[:depth]), True) is False:
            return False
    return path_filter.verdict(rel, False) is not False


def python_search(root: Path, query: GrepQuery) -> SearchOutcome:
    """Search without ripgrep: same files, same binary and size skips, same line numbers."""
    deadline = time.monotonic() + query.timeout
    matches: list[GrepMatch] = []
    whole = query.whole
    for entry in corpus_files(root, query.path_filter):
        left = deadline - time.monotonic()
        if left <= 0:
            return SearchOutcome(matches, "python", timed_out=True)
        try:
            text = _text(root, entry, query.max_file_bytes)
            if whole is not None and whole.search(text, timeout=left) is None:
                continue
            matches.extend(_search_lines(entry.path, split_lines(text), query, deadline))
        except TimeoutError:
            return SearchOutcome(matches[: query.limit], "python", timed_out=True)
        if len(matches) >= query.limit:
            break
    return SearchOutcome(matches[: query.limit], "python")


def _lines(root: Path, entry: FileEntry, max_bytes: int) -> list[str]:
    return split_lines(_text(root, entry, max_bytes))


def _text(root: Path, entry: FileEntry, max_bytes: int) -> str:
    """A file's text read race-free; empty for a refused, binary or vanished file."""
    from peek.safefs import read_beneath

    try:
        data = read_beneath(root, entry.fs_rel, max_bytes, entry.path)
    except SandboxError:
        return ""
    return "" if is_binary(data) else decode_utf8(data).text


def _search_lines(
    rel: str, lines: list[str], query: GrepQuery, deadline: float
) -> Iterator[GrepMatch]:
    room = query.limit
    for number, line in enumerate(lines, start=1):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        hit = query.regex.search(line, timeout=left)
        if hit is not None:
            yield _make_match(rel, number, line, hit.start())
            room -= 1
            if room <= 0:
                return


def ripgrep_search(rg: str, root: Path, query: GrepQuery) -> SearchOutcome | None:
    """Run rg over the corpus's files in batches; None when rg refuses the pattern."""
    deadline = time.monotonic() + query.timeout
    entries = {e.fs_rel: e for e in corpus_files(root, query.path_filter)}
    matches: list[GrepMatch] = []
    for batch in _batches(sorted(entries, key=lambda rel: tuple(rel.split("/")))):
        left = deadline - time.monotonic()
        if left <= 0:
            return SearchOutcome(matches, "ripgrep", timed_out=True)
        found, finished, fired = _run_rg(rg, root, query, batch, left)
        matches.extend(verify_matches(root, found, entries, query.max_file_bytes))
        if len(matches) >= query.limit:
            return SearchOutcome(matches[: query.limit], "ripgrep")
        if not finished:
            return SearchOutcome(matches, "ripgrep", timed_out=True) if fired else None
    return SearchOutcome(matches, "ripgrep")


def _batches(names: list[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for name in names:
        cost = len(os.fsencode(name)) + 1
        if batch and size + cost > _ARGV_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(name)
        size += cost
    if batch:
        yield batch


def _run_rg(
    rg: str, root: Path, query: GrepQuery, files: list[str], timeout: float
) -> tuple[list[GrepMatch], bool, bool]:
    fired = threading.Event()
    with subprocess.Popen(
        ripgrep_args(rg, query, files),
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as proc:
        timer = threading.Timer(timeout, _kill, (proc, fired))
        timer.start()
        try:
            matches, finished = _read_stream(proc.stdout or [], query.limit)
        finally:
            timer.cancel()
            _kill(proc, None)
    return matches, finished, fired.is_set()


def ripgrep_args(rg: str, query: GrepQuery, files: list[str]) -> list[str]:
    """rg on exactly these files: no config, no ignore logic of its own, no symlinks followed."""
    args = [rg, *_RG_FLAGS, "--max-filesize", str(query.max_file_bytes)]
    if query.regex.flags & regex.IGNORECASE:
        args.append("--ignore-case")
    return args + ["--regexp", query.pattern, "--", *files]


def verify_matches(
    root: Path, found: list[GrepMatch], entries: dict[str, FileEntry], max_bytes: int
) -> Iterator[GrepMatch]:
    """Keep rg's matches only where the file read race-free has the same line; use its text."""
    cache: dict[str, list[str]] = {}
    for match in found:
        entry = entries.get(match.path)
        if entry is None:
            continue
        if match.path not in cache:
            cache[match.path] = _lines(root, entry, max_bytes)
        lines = cache[match.path]
        if match.line > len(lines) or clip_line(lines[match.line - 1].rstrip("\r"),
                                                match.column - 1) != match.text:
            continue
        yield GrepMatch(entry.path, match.line, match.column, match.text)


def clip_line(line: str, match_start: int) -> str:
    """Keep a long line readable: about LINE_CHARS characters, placed so the match is visible."""
    if len(line) <= LINE_CHARS:
        return line
    begin = max(0, min(match_start - _CHARS_BEFORE_MATCH, len(line) - LINE_CHARS))
    end = begin + LINE_CHARS
    return ("…" if begin else "") + line[begin:end] + ("…" if end < len(line) else "")


def _make_match(path: str, number: int, line: str, match_start: int) -> GrepMatch:
    text = line.rstrip("\r\n")
    return GrepMatch(path, number, match_start + 1, clip_line(text, match_start))


def _read_stream(stream: Iterable[bytes], limit: int) -> tuple[list[GrepMatch], bool]:
    matches: list[GrepMatch] = []
    for raw in stream:
        try:
            message = json.loads(raw)
        except ValueError:
            break
        if message.get("type") == "summary":
            return matches, True
        if message.get("type") == "match":
            matches.append(_match_from_json(message["data"]))
            if len(matches) >= limit:
                return matches, False
    return matches, False


def _match_from_json(data: dict[str, Any]) -> GrepMatch:
    path = _json_bytes(data["path"]).decode("utf-8", "surrogateescape").removeprefix("./")
    raw = _json_bytes(data["lines"])
    if data["line_number"] == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        data["submatches"] = [{"start": max(0, s["start"] - 3)} for s in data["submatches"]]
    submatches = data.get("submatches") or [{"start": 0}]
    start = len(raw[: submatches[0]["start"]].decode("utf-8", "replace"))
    return _make_match(path, data["line_number"], raw.decode("utf-8", "replace"), start)


def _json_bytes(field: dict[str, str]) -> bytes:
    if "text" in field:
        return field["text"].encode("utf-8", "surrogateescape")
    return base64.b64decode(field["bytes"])


def _kill(proc: subprocess.Popen[bytes], fired: threading.Event | None) -> None:
    if proc.poll() is None:
        if fired is not None:
            fired.set()
        proc.kill()
