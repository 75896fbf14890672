"""Confinement: map a caller's path onto a real file or folder inside the corpus root."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import PathEscapeError, SandboxError

_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "named pipe (FIFO)"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


def real_root(root: str | os.PathLike[str]) -> Path:
    """Resolve the corpus root once so every later containment check compares real paths."""
    real = Path(os.path.realpath(os.fspath(root)))
    if not real.is_dir():
        raise SandboxError(f"corpus root {os.fspath(root)!r} is not a folder; pass a folder")
    return real


def resolve_in_root(root: Path, path: str) -> Path:
    """Return the real path of `path` if it is a file or folder inside `root`; else refuse."""
    _check_path_text(path)
    real = _realpath(root, path)
    if not real.is_relative_to(root):
        raise PathEscapeError(
            f"path {path!r} leads outside the corpus root; use a path inside the corpus"
        )
    mode = _stat_mode(real, path)
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise SandboxError(
            f"{path!r} is a {special_kind(mode)}; only regular files and folders can be read"
        )
    return real


def relative_posix(root: Path, real: Path) -> str:
    """Name a path the way every tool reports it: relative to the root, with forward slashes."""
    rel = real.relative_to(root).as_posix()
    return rel if rel else "."


def special_kind(mode: int) -> str:
    """Name a non-regular file type so refusals say exactly what the path is."""
    for test, name in _SPECIAL_KINDS:
        if test(mode):
            return name
    return "special file"


def _check_path_text(path: object) -> None:
    if not isinstance(path, str):
        raise SandboxError(f"path must be a string, not {type(path).__name__}; pass a path")
    if "\0" in path:
        raise SandboxError(f"path {path!r} contains a NUL byte; pass a plain relative path")


def _realpath(root: Path, path: str) -> Path:
    try:
        return Path(os.path.realpath(os.path.join(root, path)))
    except (OSError, ValueError) as err:
        raise SandboxError(f"cannot resolve path {path!r} ({err}); pass a simpler path") from err


def _stat_mode(real: Path, path: str) -> int:
    try:
        return os.stat(real).st_mode
    except FileNotFoundError as err:
        raise SandboxError(
            f"no such file or directory {path!r} in corpus; use list_dir or glob to see what exists"
        ) from err
    except PermissionError as err:
        raise SandboxError(f"permission denied for {path!r}; pick another path") from err
    except OSError as err:
        raise SandboxError(f"cannot open {path!r} ({err.strerror}); pick another path") from err
