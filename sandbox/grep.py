"""Searching file contents: ripgrep as a real subprocess when present, else a pure-Python walk."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SandboxError
from .globs import PathFilter
from .results import GrepMatch
from .textfile import decode_utf8, looks_binary, read_bytes, split_lines
from .walk import WalkEntry, walk_files

LINE_CHARS = 300
_CHARS_BEFORE_MATCH = 100
# Only .gitignore files inside the root count (no parent, global, .ignore or info/exclude rules),
# and rg sorts by path so a capped search returns the same first matches as the Python walk.
_RG_FLAGS = (
    "--json", "--no-config", "--no-follow", "--no-messages", "--sort", "path", "--hidden",
    "--no-require-git", "--no-ignore-parent", "--no-ignore-global", "--no-ignore-exclude",
    "--no-ignore-dot",
)  # fmt: skip


@dataclass(frozen=True)
class GrepQuery:
    """Everything both backends need to run one search the same way."""

    pattern: str
    regex: re.Pattern[str]
    path_filter: PathFilter | None
    limit: int
    max_file_bytes: int
    timeout: float


@dataclass(frozen=True)
class SearchOutcome:
    """Matches in path order (at most `limit`), the backend that found them, and if time ran out."""

    matches: list[GrepMatch]
    backend: str
    timed_out: bool = False


def find_ripgrep() -> str | None:
    """Prefer the rg installed with this venv (the pinned `ripgrep` wheel), then any rg on PATH."""
    beside = Path(sys.executable).parent / "rg"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("rg")


def compile_pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """Validate the regex with Python's rules, which both backends accept as the contract."""
    if not isinstance(pattern, str) or not pattern:
        raise SandboxError("grep needs a non-empty regex pattern, e.g. 'def main'")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as err:
        raise SandboxError(
            f"invalid regex {pattern!r}: {err.msg} at position {err.pos}; "
            "escape special characters such as ( [ { . * + ? with a backslash"
        ) from err


def python_search(root: Path, query: GrepQuery) -> SearchOutcome:
    """Search without ripgrep: same walk rules, same binary and size skips, same line numbers."""
    deadline = time.monotonic() + query.timeout
    matches: list[GrepMatch] = []
    override = query.path_filter.verdict if query.path_filter is not None else None
    for entry in walk_files(root, override):
        if entry.is_symlink:
            continue
        if time.monotonic() > deadline:
            return SearchOutcome(matches, "python", timed_out=True)
        matches.extend(_search_file(entry, query, query.limit - len(matches)))
        if len(matches) >= query.limit:
            break
    return SearchOutcome(matches, "python")


def ripgrep_search(rg: str, root: Path, query: GrepQuery) -> SearchOutcome | None:
    """Run rg with --json and read matches as they stream; None when rg refuses the pattern."""
    fired = threading.Event()
    with subprocess.Popen(
        ripgrep_args(rg, query),
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as proc:
        timer = threading.Timer(query.timeout, _kill, (proc, fired))
        timer.start()
        try:
            matches, finished = _read_stream(proc.stdout or [], query.limit)
        finally:
            timer.cancel()
            _kill(proc, None)
    if finished or len(matches) >= query.limit:
        return SearchOutcome(matches, "ripgrep")
    return SearchOutcome(matches, "ripgrep", timed_out=True) if fired.is_set() else None


def ripgrep_args(rg: str, query: GrepQuery) -> list[str]:
    """Flags that make rg walk exactly like `walk_files`: hidden files in, .git out, no symlinks."""
    args = [rg, *_RG_FLAGS, "--max-filesize", str(query.max_file_bytes)]
    if query.regex.flags & re.IGNORECASE:
        args.append("--ignore-case")
    if query.path_filter is not None:
        args += ["--glob", query.path_filter.glob]
    return args + ["--glob", "!.git", "--regexp", query.pattern, "--", "."]


def clip_line(line: str, match_start: int) -> str:
    """Keep a long line readable: about LINE_CHARS characters, placed so the match is visible."""
    if len(line) <= LINE_CHARS:
        return line
    begin = max(0, min(match_start - _CHARS_BEFORE_MATCH, len(line) - LINE_CHARS))
    end = begin + LINE_CHARS
    return ("…" if begin else "") + line[begin:end] + ("…" if end < len(line) else "")


def _search_file(entry: WalkEntry, query: GrepQuery, room: int) -> list[GrepMatch]:
    try:
        data = read_bytes(entry.path, query.max_file_bytes, entry.rel)
    except SandboxError:
        return []
    if looks_binary(data):
        return []
    found: list[GrepMatch] = []
    for number, line in enumerate(split_lines(decode_utf8(data).text), start=1):
        hit = query.regex.search(line)
        if hit is not None:
            found.append(_make_match(entry.rel, number, line, hit.start()))
            if len(found) >= room:
                break
    return found


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
