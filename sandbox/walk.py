"""Walking a corpus as ripgrep does: sorted, no symlinks followed, .git and ignored files out."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import SandboxError
from .globs import GlobRule, last_verdict, parse_gitignore
from .textfile import decode_utf8, read_bytes

_GITIGNORE_MAX_BYTES = 1024 * 1024
_Rules = tuple[tuple[str, tuple[GlobRule, ...]], ...]
Override = Callable[[str, bool], bool | None]


@dataclass(frozen=True)
class WalkEntry:
    """One non-directory entry found by the walk: a regular file or a symlink (never followed)."""

    rel: str
    path: str
    is_symlink: bool


def walk_files(root: Path, override: Override | None = None) -> Iterator[WalkEntry]:
    """Yield files under `root` in path order, pruning ignored paths, so every tool sees alike."""
    # override(rel, is_dir) acts like rg --glob: True keeps a path even if .gitignore ignores
    # it, False drops it, None leaves the decision to .gitignore.
    stack = [(iter(sorted_entries(str(root))), "", _with_gitignore(str(root), "", ()))]
    while stack:
        entries, rel_dir, rules = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        kind = _entry_kind(entry)
        rel = rel_dir + entry.name
        if kind is None or entry.name == ".git" or _skipped(rules, override, rel, kind == "dir"):
            continue
        if kind == "dir":
            child_rules = _with_gitignore(entry.path, rel + "/", rules)
            stack.append((iter(sorted_entries(entry.path)), rel + "/", child_rules))
        else:
            yield WalkEntry(rel, entry.path, kind == "symlink")


def path_sort_key(rel: str) -> tuple[str, ...]:
    """Order paths as a sorted depth-first walk does, so `a/x` comes before `a.txt`."""
    return tuple(rel.split("/"))


def _skipped(rules: _Rules, override: Override | None, rel: str, is_dir: bool) -> bool:
    verdict = override(rel, is_dir) if override is not None else None
    return not verdict if verdict is not None else is_ignored(rules, rel, is_dir)


def is_ignored(rules: _Rules, rel: str, is_dir: bool) -> bool:
    """Apply .gitignore files deepest first; the first file with a verdict decides, as in git."""
    for base, file_rules in reversed(rules):
        verdict = last_verdict(file_rules, rel[len(base) :], is_dir)
        if verdict is not None:
            return verdict
    return False


def sorted_entries(dirpath: str) -> list[os.DirEntry[str]]:
    """List a folder sorted by name (the order ripgrep uses); an unreadable folder lists empty."""
    try:
        with os.scandir(dirpath) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except OSError:
        return []


def _entry_kind(entry: os.DirEntry[str]) -> str | None:
    try:
        if entry.is_symlink():
            return "symlink"
        if entry.is_dir(follow_symlinks=False):
            return "dir"
        return "file" if entry.is_file(follow_symlinks=False) else None
    except OSError:
        return None


def _with_gitignore(dirpath: str, rel_dir: str, rules: _Rules) -> _Rules:
    file_rules = _load_gitignore(os.path.join(dirpath, ".gitignore"))
    return rules + ((rel_dir, file_rules),) if file_rules else rules


def _load_gitignore(path: str) -> tuple[GlobRule, ...]:
    if not os.path.lexists(path):
        return ()
    try:
        data = read_bytes(path, _GITIGNORE_MAX_BYTES, ".gitignore")
    except SandboxError:
        return ()
    return parse_gitignore(decode_utf8(data).text)
