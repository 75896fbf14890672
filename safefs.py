"""Race-free, bounded reads beneath a corpus root: every path component opened without following.

Each component is opened relative to the descriptor of its parent (`dir_fd`) with `O_NOFOLLOW`,
so swapping a folder or file for a symlink after a check cannot lead outside the root. Symlinks
are resolved here, one component at a time, and may only point beneath the root. The opened
descriptor is `fstat`-ed (regular file or folder, size cap), and `O_NONBLOCK` means a FIFO never
blocks. The indexer, the sandbox tools and citation checks all read through this module.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Want = Literal["file", "dir", "any"]
MAX_SYMLINKS = 40
_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOCTTY", 0)
)
_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "named pipe (FIFO)"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


class SandboxError(ValueError):
    """A read the sandbox refuses; the message is shown verbatim to a person or an agent."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.splitlines()))


class PathEscapeError(SandboxError):
    """A path that leaves the corpus root through `..`, an absolute path or a symlink."""


@dataclass(frozen=True)
class Opened:
    """An open descriptor beneath the root, its canonical relative path and its stat."""

    fd: int
    rel: str
    info: os.stat_result

    @property
    def is_dir(self) -> bool:
        """Whether the descriptor is a folder."""
        return stat.S_ISDIR(self.info.st_mode)


def special_kind(mode: int) -> str:
    """Name a non-regular file type so refusals say exactly what the path is."""
    for test, name in _SPECIAL_KINDS:
        if test(mode):
            return name
    return "special file"


def check_path_text(path: object) -> str:
    """A caller's path as text, refusing non-strings and NUL bytes before any system call."""
    if not isinstance(path, str):
        raise SandboxError(f"path must be a string, not {type(path).__name__}; pass a path")
    if "\0" in path:
        raise SandboxError(f"path {path!r} contains a NUL byte; pass a plain relative path")
    return path


@contextmanager
def open_beneath(root: Path, path: str, want: Want = "any") -> Iterator[Opened]:
    """Open `path` (relative, or absolute inside `root`) beneath the real folder `root`."""
    opened = _resolve(root, check_path_text(path), path)
    try:
        _check_kind(opened, want, path)
        yield opened
    finally:
        os.close(opened.fd)


def read_beneath(root: Path, path: str, max_bytes: int, display: str | None = None) -> bytes:
    """The bytes of a regular file beneath `root`, refused when over `max_bytes`."""
    shown = path if display is None else display
    with open_beneath(root, path, "file") as opened:
        return read_fd(opened.fd, opened.info, max_bytes, shown)


def read_fd(fd: int, info: os.stat_result, max_bytes: int, display: str) -> bytes:
    """Read an open regular file, never more than `max_bytes` even if it grows meanwhile."""
    if info.st_size > max_bytes:
        raise SandboxError(
            f"{display!r} is {info.st_size} bytes, over the {max_bytes}-byte read limit; "
            "use grep or find_symbol to locate what you need in smaller files"
        )
    chunks, left = [], max_bytes + 1
    while left > 0:
        block = os.read(fd, min(left, 1 << 20))
        if not block:
            break
        chunks.append(block)
        left -= len(block)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise SandboxError(f"{display!r} grew past the {max_bytes}-byte read limit while read")
    return data


def _check_kind(opened: Opened, want: Want, path: str) -> None:
    mode = opened.info.st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise SandboxError(
            f"{path!r} is a {special_kind(mode)}; only regular files and folders can be read"
        )
    if want == "file" and opened.is_dir:
        raise SandboxError(f"{path!r} is a folder; use list_dir to see what it holds")
    if want == "dir" and not opened.is_dir:
        raise SandboxError(f"{path!r} is a file, not a folder; use read_file to read it")


class _Walk:
    """The descriptors from the root down to the current folder, and their names."""

    def __init__(self, root: Path, path: str) -> None:
        self.root, self.path = root, path
        self.fds = [_open_root(root)]
        self.names: list[str] = []
        self.hops = 0

    def close_all(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()

    def up(self) -> None:
        if not self.names:
            raise _escape(self.path)
        os.close(self.fds.pop())
        self.names.pop()

    def to_root(self) -> None:
        while self.names:
            self.up()


def _resolve(root: Path, path: str, display: str) -> Opened:
    walk = _Walk(root, display)
    try:
        parts = _start(walk, path)
        while parts:
            _step(walk, parts.popleft(), parts)
        fd = walk.fds.pop()
        return Opened(fd, "/".join(walk.names) or ".", os.fstat(fd))
    finally:
        walk.close_all()


def _start(walk: _Walk, path: str) -> deque[str]:
    if os.path.isabs(path):
        return deque(_inside(walk, path))
    return deque(path.split("/"))


def _inside(walk: _Walk, target: str) -> list[str]:
    """An absolute path's parts below the root; anything else escapes."""
    root = os.fspath(walk.root).rstrip("/") or "/"
    for norm in (os.path.normpath(target), os.path.realpath(target)):
        if norm == root:
            return []
        if norm.startswith(root.rstrip("/") + "/"):
            # realpath only names the parts; they are opened again beneath the root, unfollowed
            return norm[len(root.rstrip("/")) + 1 :].split("/")
    raise _escape(walk.path)


def _step(walk: _Walk, name: str, parts: deque[str]) -> None:
    if name in ("", "."):
        return
    if name == "..":
        walk.up()
        return
    parent = walk.fds[-1]
    try:
        info = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except OSError as err:
        raise _os_refusal(err, walk.path) from err
    if stat.S_ISLNK(info.st_mode):
        _follow(walk, name, parts)
        return
    if parts and not stat.S_ISDIR(info.st_mode):
        if any(p not in ("", ".") for p in parts):
            raise SandboxError(f"{walk.path!r}: {name!r} is not a folder; check the path")
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
        raise SandboxError(
            f"{walk.path!r} is a {special_kind(info.st_mode)}; "
            "only regular files and folders can be read"
        )
    try:
        fd = os.open(name, _FLAGS, dir_fd=parent)
    except OSError as err:
        raise _os_refusal(err, walk.path) from err
    walk.fds.append(fd)
    walk.names.append(name)


def _follow(walk: _Walk, name: str, parts: deque[str]) -> None:
    """Resolve a symlink's target from where it lives; it must stay beneath the root."""
    walk.hops += 1
    if walk.hops > MAX_SYMLINKS:
        raise SandboxError(f"{walk.path!r} has too many levels of symlinks; use the real path")
    try:
        target = os.readlink(name, dir_fd=walk.fds[-1])
    except OSError as err:
        raise _os_refusal(err, walk.path) from err
    if os.path.isabs(target):
        inner = _inside(walk, target)
        walk.to_root()
        parts.extendleft(reversed(inner))
    else:
        parts.extendleft(reversed(target.split("/")))


def _open_root(root: Path) -> int:
    try:
        flags = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
        return os.open(os.fspath(root), flags | getattr(os, "O_NOFOLLOW", 0))
    except OSError as err:
        message = f"cannot open the corpus root {os.fspath(root)!r} ({err.strerror})"
        raise SandboxError(message) from err


def _escape(path: str) -> PathEscapeError:
    return PathEscapeError(
        f"path {path!r} leads outside the corpus root; use a path inside the corpus"
    )


def _os_refusal(err: OSError, path: str) -> SandboxError:
    if err.errno in (errno.ENOENT, errno.ENOTDIR):
        return SandboxError(
            f"no such file or directory {path!r} in corpus; use list_dir or glob to see what exists"
        )
    if err.errno in (errno.EACCES, errno.EPERM):
        return SandboxError(f"permission denied for {path!r}; pick another path")
    if err.errno == errno.ELOOP:
        return SandboxError(f"{path!r} changed while it was opened; try again")
    return SandboxError(f"cannot open {path!r} ({err.strerror}); pick another path")
