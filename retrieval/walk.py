"""Corpus walking: which files peek indexes, honouring ignore files, size caps and the root."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pathspec import GitIgnoreSpec

IGNORE_FILES = (".gitignore", ".peekignore")
DEFAULT_IGNORES = (
    ".git/", ".hg/", ".svn/", "__pycache__/", "node_modules/", ".venv/", ".tox/",
    ".mypy_cache/", ".pytest_cache/", ".ruff_cache/", "*.pyc", "*.pyo",
)
BINARY_SUFFIXES = frozenset(
    ".png .jpg .jpeg .gif .bmp .ico .webp .tif .tiff .pdf .zip .gz .tgz .bz2 .xz .7z .tar .whl "
    ".egg .so .dylib .dll .exe .o .a .class .jar .pyd .woff .woff2 .ttf .otf .eot .mp3 .mp4 "
    ".wav .ogg .avi .mov .sqlite .db .npy .npz .pkl .pickle .parquet .fits .h5 .hdf5".split()
)
SNIFF_BYTES = 8192


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A candidate file: its posix path relative to the root, and the stat that keys re-reads."""

    path: str
    abspath: Path
    size: int
    mtime_ns: int


@dataclass(slots=True)
class WalkReport:
    """What a walk found and what it left out, and why."""

    files: list[FileEntry] = field(default_factory=list)
    too_large: list[str] = field(default_factory=list)
    binary_suffix: int = 0
    outside_symlinks: int = 0
    special: int = 0
    unreadable: list[str] = field(default_factory=list)


def git_blob_sha(data: bytes) -> str:
    """The blob id git gives these bytes (`git hash-object`), so peek and git agree on identity."""
    digest = hashlib.sha1(b"blob %d\0" % len(data))
    digest.update(data)
    return digest.hexdigest()


def is_binary(data: bytes) -> bool:
    """A NUL byte in the first 8 KiB marks a file as binary, as git and grep do."""
    return b"\0" in data[:SNIFF_BYTES]


def walk_corpus(root: Path, max_file_bytes: int) -> WalkReport:
    """Every indexable file under `root`: ignore files honoured, nothing followed out of it."""
    report = WalkReport()
    base = [("", GitIgnoreSpec.from_lines(DEFAULT_IGNORES))]
    exclude = root / ".git" / "info" / "exclude"
    if exclude.is_file():
        base.append(("", _read_spec(exclude)))
    for entry in _walk(root, root, "", base, report):
        if entry.size > max_file_bytes:
            report.too_large.append(entry.path)
        else:
            report.files.append(entry)
    report.files.sort(key=lambda e: e.path)
    return report


def _read_spec(path: Path) -> GitIgnoreSpec:
    return GitIgnoreSpec.from_lines(path.read_text(encoding="utf-8", errors="replace").splitlines())


def _ignored(rel: str, specs: list[tuple[str, GitIgnoreSpec]]) -> bool:
    """Deeper ignore files win over shallower ones, as in git."""
    for base, spec in reversed(specs):
        result = spec.check_file(rel[len(base):] if base else rel)
        if result.include is not None:
            return bool(result.include)
    return False


def _walk(
    root: Path, folder: Path, rel: str, specs: list[tuple[str, GitIgnoreSpec]], report: WalkReport
) -> Iterator[FileEntry]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        report.unreadable.append(rel or ".")
        return
    names = {e.name: e for e in entries}
    specs = specs + [(rel, _read_spec(folder / n)) for n in IGNORE_FILES
                     if n in names and names[n].is_file()]
    for entry in entries:
        child = f"{rel}{entry.name}"
        if entry.is_dir(follow_symlinks=False):
            if not _ignored(child + "/", specs):
                yield from _walk(root, Path(entry.path), child + "/", specs, report)
        elif not _ignored(child, specs):
            found = _file_entry(root, entry, child, report)
            if found is not None:
                yield found


def _file_entry(
    root: Path, entry: os.DirEntry[str], rel: str, report: WalkReport
) -> FileEntry | None:
    """A regular file (or a symlink to one inside the root) with its stat; None otherwise."""
    try:
        if entry.is_symlink():
            target = Path(os.path.realpath(entry.path))
            if not target.is_relative_to(root) or target.is_dir():
                report.outside_symlinks += not target.is_dir()
                return None
        st = entry.stat()
    except OSError:
        report.unreadable.append(rel)
        return None
    if not stat.S_ISREG(st.st_mode):
        report.special += 1
        return None
    if os.path.splitext(rel)[1].lower() in BINARY_SUFFIXES:
        report.binary_suffix += 1
        return None
    return FileEntry(rel, Path(entry.path), st.st_size, st.st_mtime_ns)


@dataclass(frozen=True, slots=True)
class GitState:
    """The commit and remote of a git corpus, recorded with each index."""

    head: str | None
    remote: str | None


def git_state(root: Path) -> GitState | None:
    """HEAD and origin URL when `root` is a git work tree; None for a plain folder."""
    if not (root / ".git").exists():
        return None
    return GitState(_git(root, "rev-parse", "HEAD"), _git(root, "remote", "get-url", "origin"))


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
