"""The one corpus walker and ignore engine: what peek indexes is exactly what its tools serve.

The indexer, `peek status` and the sandbox tools (glob, grep, list_dir, read_file) all ask this
module which files exist: `.gitignore`, `.peekignore` and `.git/info/exclude` are honoured with
pathspec, `.git/` is never entered, and secrets (`.env`, keys, credential files) are excluded by
default; a `.peekignore` line such as `!.env.example` brings one back. Folders are walked through
descriptors opened without following symlinks, so a folder swapped for a symlink mid-walk cannot
lead outside the root.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

from pathspec import GitIgnoreSpec

from peek.safefs import SandboxError, open_beneath, read_beneath

IGNORE_FILES = (".gitignore", ".peekignore")
DEFAULT_IGNORES = (
    ".git", ".hg/", ".svn/", "__pycache__/", "node_modules/", ".venv/", ".tox/",
    ".mypy_cache/", ".pytest_cache/", ".ruff_cache/", "*.pyc", "*.pyo",
)
# Secrets: never indexed or served unless a .peekignore re-includes them with `!pattern`.
SECRET_IGNORES = (
    ".env", ".env.*", "!.env.example", "!.env.sample", "!.env.template", ".envrc",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.kdbx", "*.gpg", "*.asc",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "!*.pub", ".ssh/", ".gnupg/", ".aws/",
    ".netrc", "_netrc", ".pgpass", ".pypirc", ".npmrc", ".git-credentials", ".htpasswd",
    "credentials", "credentials.json", "*.tfstate", "*.tfstate.*", "secrets.yml",
    "secrets.yaml", "secrets.json", "service-account*.json",
)
BINARY_SUFFIXES = frozenset(
    ".png .jpg .jpeg .gif .bmp .ico .webp .tif .tiff .pdf .zip .gz .tgz .bz2 .xz .7z .tar .whl "
    ".egg .so .dylib .dll .exe .o .a .class .jar .pyd .woff .woff2 .ttf .otf .eot .mp3 .mp4 "
    ".wav .ogg .avi .mov .sqlite .db .npy .npz .pkl .pickle .parquet .fits .h5 .hdf5".split()
)
IGNORE_FILE_MAX_BYTES = 1 << 20
MAX_DEPTH = 128
_DIR_FLAGS = (
    os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
)
_Specs = tuple[tuple[str, "Rules"], ...]


class Rules:
    """One ignore file's patterns (translated by pathspec), decided the way git decides.

    The walk checks every folder before what it holds, so a pattern that only matches a path
    through one of its folders (`build/` against `build/a.py`) has already had its say; the
    last pattern that matches the path itself wins. A combined regex rules out, in one search,
    the common case of a path that no pattern matches.
    """

    def __init__(self, lines: list[str] | tuple[str, ...]) -> None:
        spec = _spec(lines)
        self._sources = [(bool(p.include), *_split_regex(p.regex.pattern))
                         for p in reversed(spec.patterns)
                         if p.include is not None and p.regex is not None]
        parts = [src for _, *both in self._sources for src in both if src is not None]
        self.any = re.compile(_either(parts)) if parts else None

    @cached_property
    def patterns(self) -> list[tuple[bool, re.Pattern[str] | None, re.Pattern[str]]]:
        """Each line's file and folder regexes, compiled when a path first matches any line."""
        return [(include, None if for_file is None else re.compile(for_file), re.compile(for_dir))
                for include, for_file, for_dir in self._sources]

    def verdict(self, target: str) -> bool | None:
        """True: ignored, False: re-included by a `!` line, None: no line speaks of it.

        `target` ends with `/` for a folder. The last matching line wins, as in git.
        """
        if self.any is None or self.any.search(target) is None:
            return None
        is_dir = target.endswith("/")
        for include, for_file, for_dir in self.patterns:
            rx = for_dir if is_dir else for_file
            if rx is not None and rx.search(target) is not None:
                return include
        return None


def _spec(lines: list[str] | tuple[str, ...]) -> GitIgnoreSpec:
    """The lines' patterns; a line pathspec rejects (`!`, a lone backslash) is skipped, as git
    skips it, instead of failing the whole walk."""
    try:
        return GitIgnoreSpec.from_lines(lines)
    except ValueError:
        return GitIgnoreSpec.from_lines([line for line in lines if _valid(line)])


def _valid(line: str) -> bool:
    try:
        GitIgnoreSpec.from_lines([line])
    except ValueError:
        return False
    return True


_ANY_FOLDER = "^(?:.+/)?"  # how pathspec starts a pattern without a slash (most of them)


def _either(parts: list[str]) -> str:
    """One regex matching what any part matches; the common `^(?:.+/)?` is factored out, which
    makes the search several times faster on long paths (same language, so same verdicts)."""
    shared = [p[len(_ANY_FOLDER):] for p in parts if p.startswith(_ANY_FOLDER)]
    rest = [p for p in parts if not p.startswith(_ANY_FOLDER)]
    if shared:
        rest.append(_ANY_FOLDER + "(?:" + "|".join(f"(?:{p})" for p in shared) + ")")
    return "|".join(f"(?:{p})" for p in rest)


@lru_cache(maxsize=256)
def cached_rules(lines: tuple[str, ...]) -> Rules:
    """Rules for these exact lines, compiled once per process (every read checks them)."""
    return Rules(lines)


def _split_regex(source: str) -> tuple[str | None, str]:
    """pathspec's regex as two: one for a file itself, one for a folder (`a/b/`) itself.

    pathspec also matches a path through a folder above it (`build/` matches `build/a.py`);
    the walk has already judged those folders, so only the path's own last part counts here,
    and a folder-only line (`build/`) never matches a file.
    """
    either = "(?:(?P<ps_d>/)|$)"
    file_source = source.replace(either, "$")
    for_file = None if "(?P<ps_d>" in file_source else file_source
    return for_file, source.replace(either, "/$").replace("(?P<ps_d>/)", "/$")


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A candidate file: its stored path, where it lives, and the stat that keys re-reads.

    `path` is what the store and every tool report (valid UTF-8: undecodable bytes in a name
    are shown as `\\xNN`); `fs_rel` is the name on disk, used to open the file.
    """

    path: str
    size: int
    mtime_ns: int
    fs_rel: str = ""
    is_symlink: bool = False


@dataclass(slots=True)
class WalkReport:
    """What a walk found and what it left out, and why."""

    files: list[FileEntry] = field(default_factory=list)
    too_large: list[str] = field(default_factory=list)
    binary_suffix: int = 0
    binary_paths: list[FileEntry] = field(default_factory=list)
    outside_symlinks: int = 0
    special: int = 0
    unreadable: list[str] = field(default_factory=list)


def display_path(rel: str) -> str:
    """A path as valid UTF-8 text: bytes that are not UTF-8 become `\\xNN`, reversibly enough."""
    try:
        rel.encode("utf-8")
        return rel
    except UnicodeEncodeError:
        raw = rel.encode("utf-8", "surrogateescape")
        return raw.decode("utf-8", "backslashreplace")


class IgnoreRules:
    """Which paths under a root are excluded: defaults, secrets, info/exclude and ignore files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        base = [("", cached_rules((*DEFAULT_IGNORES, *SECRET_IGNORES)))]
        exclude = self._load(".git/info/exclude")
        if exclude is not None:
            base.append(("", exclude))
        self._base: _Specs = tuple(base)
        self._dirs: dict[str, _Specs] = {}
        self._listed: dict[str, tuple[str, ...]] = {}

    def listed(self, dir_rel: str, names: set[str]) -> None:
        """Note which ignore files a folder's listing holds, so `specs` opens only those."""
        self._listed[dir_rel] = tuple(n for n in IGNORE_FILES if n in names)

    def specs(self, dir_rel: str) -> _Specs:
        """The rules that apply inside a folder (`""` or `"a/b/"`), deepest last."""
        found = self._dirs.get(dir_rel)
        if found is None:
            parent = self._base if not dir_rel else self.specs(_parent_dir(dir_rel))
            own = tuple(
                (dir_rel, spec)
                for spec in (self._load(dir_rel + name)
                             for name in self._listed.pop(dir_rel, IGNORE_FILES))
                if spec is not None
            )
            found = self._dirs[dir_rel] = parent + own
        return found

    def ignored_in(self, dir_rel: str, rel: str, is_dir: bool) -> bool:
        """Whether `rel`, an entry of the folder `dir_rel`, is ignored (folders already kept)."""
        target = rel + "/" if is_dir else rel
        for base, rules in reversed(self.specs(dir_rel)):
            verdict = rules.verdict(target[len(base) :] if base else target)
            if verdict is not None:
                return verdict
        return False

    def excluded(self, rel: str, is_dir: bool = False) -> bool:
        """Whether a path is out of the corpus: itself or any folder above it is ignored."""
        if rel in ("", "."):
            return False
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if self.ignored_in(_dir_of(folder), folder, True):
                return True
        return self.ignored_in(_dir_of(rel), rel, is_dir)

    def _load(self, rel: str) -> Rules | None:
        try:
            data = read_beneath(self.root, rel, IGNORE_FILE_MAX_BYTES)
        except SandboxError:
            return None
        lines = data.decode("utf-8", errors="replace").splitlines()
        return cached_rules(tuple(lines)) if lines else None


def _dir_of(rel: str) -> str:
    head = rel.rpartition("/")[0]
    return head + "/" if head else ""


def _parent_dir(dir_rel: str) -> str:
    return _dir_of(dir_rel.rstrip("/"))


def walk_corpus(root: Path, max_file_bytes: int, rules: IgnoreRules | None = None) -> WalkReport:
    """Every indexable file under `root`: ignore files honoured, nothing followed out of it."""
    report = WalkReport()
    for entry in iter_files(root, rules, report):
        if Path(entry.path).suffix.lower() in BINARY_SUFFIXES:
            report.binary_suffix += 1
            report.binary_paths.append(entry)
        elif entry.size > max_file_bytes:
            report.too_large.append(entry.path)
        else:
            report.files.append(entry)
    report.files.sort(key=lambda e: e.path)
    return report


def iter_files(
    root: Path, rules: IgnoreRules | None = None, report: WalkReport | None = None,
    *, with_stat: bool = True,
) -> Iterator[FileEntry]:
    """Every file the corpus holds (not ignored, regular, inside the root), in path order.

    Without `with_stat`, plain files are not stat-ed (size -1): enough for glob and grep,
    which read through the capped reader anyway.
    """
    rules = IgnoreRules(root) if rules is None else rules
    report = WalkReport() if report is None else report
    try:
        fd = os.open(os.fspath(root), _DIR_FLAGS)
    except OSError:
        report.unreadable.append(".")
        return
    try:
        yield from _walk(root, fd, "", rules, report, with_stat)
    finally:
        os.close(fd)


def _walk(
    root: Path, fd: int, rel: str, rules: IgnoreRules, report: WalkReport, with_stat: bool
) -> Iterator[FileEntry]:
    try:
        with os.scandir(fd) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError:
        report.unreadable.append(rel or ".")
        return
    rules.listed(rel, {e.name for e in entries})
    for entry in entries:
        child = rel + entry.name
        kind = _kind(entry)
        if kind is None or rules.ignored_in(rel, child, kind == "dir"):
            continue
        if kind == "dir":
            yield from _subfolder(root, fd, entry.name, child + "/", rules, report, with_stat)
        elif kind == "symlink":
            found = _symlinked(root, child, rules, report)
            if found is not None:
                yield found
        elif kind == "file" and not with_stat:
            yield FileEntry(display_path(child), -1, 0, child)
        elif kind == "file":
            found = _plain(root, entry, child, report)
            if found is not None:
                yield found
        else:
            report.special += 1


def _subfolder(
    root: Path, parent: int, name: str, rel: str, rules: IgnoreRules, report: WalkReport,
    with_stat: bool,
) -> Iterator[FileEntry]:
    if rel.count("/") > MAX_DEPTH:  # a folder nested this deep is left out, not a crash
        report.unreadable.append(display_path(rel.rstrip("/")))
        return
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError:
        report.unreadable.append(rel.rstrip("/"))
        return
    try:
        yield from _walk(root, fd, rel, rules, report, with_stat)
    finally:
        os.close(fd)


def _kind(entry: os.DirEntry[str]) -> str | None:
    try:
        if entry.is_symlink():
            return "symlink"
        if entry.is_dir(follow_symlinks=False):
            return "dir"
        return "file" if entry.is_file(follow_symlinks=False) else "special"
    except OSError:
        return None


def _plain(root: Path, entry: os.DirEntry[str], rel: str, report: WalkReport) -> FileEntry | None:
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError:
        report.unreadable.append(display_path(rel))
        return None
    return _entry(rel, st)


def _symlinked(root: Path, rel: str, rules: IgnoreRules, report: WalkReport) -> FileEntry | None:
    """A symlink to a served regular file inside the root (folder symlinks are not followed)."""
    try:
        with open_beneath(root, rel) as opened:
            info, target = opened.info, opened.rel
    except SandboxError:
        report.outside_symlinks += not os.path.isdir(root / rel)  # folder links are not followed
        return None
    if stat.S_ISDIR(info.st_mode) or rules.excluded(target):
        return None
    return _entry(rel, info, True)


def _entry(rel: str, st: os.stat_result, link: bool = False) -> FileEntry | None:
    if not stat.S_ISREG(st.st_mode):
        return None
    return FileEntry(display_path(rel), st.st_size, st.st_mtime_ns, rel, link)


@dataclass(frozen=True, slots=True)
class GitState:
    """The commit and remote of a git corpus, recorded with each index."""

    head: str | None
    remote: str | None


def git_state(root: Path) -> GitState | None:
    """HEAD and origin URL (credentials stripped) when `root` is a git work tree; else None."""
    from peek.gitutil import is_git_tree, run_git, strip_credentials

    if not is_git_tree(root):
        return None
    head = run_git(root, "rev-parse", "HEAD")
    remote = run_git(root, "remote", "get-url", "origin")
    return GitState(
        head.strip() or None if head else None,
        strip_credentials(remote.strip()) if remote and remote.strip() else None,
    )
