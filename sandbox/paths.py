"""Confinement: map a caller's path onto a file or folder inside the corpus root, or refuse."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from peek.errors import QueryError
from peek.safefs import Opened, SandboxError, open_beneath, special_kind

if TYPE_CHECKING:
    from peek.retrieval.walk import IgnoreRules

__all__ = ["corpus_path", "excluded_error", "real_root", "relative_posix", "resolve_in_root",
           "special_kind"]


def real_root(root: str | os.PathLike[str]) -> Path:
    """Resolve the corpus root once so every later containment check compares real paths."""
    real = Path(os.path.realpath(os.fspath(root)))
    if not real.is_dir():
        raise SandboxError(f"corpus root {os.fspath(root)!r} is not a folder; pass a folder")
    return real


def resolve_in_root(root: Path, path: str, rules: IgnoreRules | None = None) -> Path:
    """The real path of `path` if it is a served file or folder inside `root`; else refuse."""
    with open_beneath(root, path) as opened:
        check_served(root, opened, path, rules)
        return root / opened.rel if opened.rel != "." else root


def check_served(root: Path, opened: Opened, path: str, rules: IgnoreRules | None) -> None:
    """Refuse what the index would not index: .git, ignored files and secrets."""
    from peek.retrieval.walk import IgnoreRules  # the rules compile only for a check

    rules = IgnoreRules(root) if rules is None else rules
    if rules.excluded(opened.rel, opened.is_dir):
        raise excluded_error(path)


def excluded_error(path: str) -> SandboxError:
    """The refusal for a path the corpus's ignore rules (or the secrets rules) leave out."""
    return SandboxError(
        f"{path!r} is excluded from this corpus (.git, an ignore file or the secrets rules); "
        "peek never serves it"
    )


def relative_posix(root: Path, real: Path) -> str:
    """Name a path the way every tool reports it: relative to the root, with forward slashes."""
    rel = real.relative_to(root).as_posix()
    return rel if rel else "."


def corpus_path(root: Path, path: str) -> str:
    """A corpus path as stored (posix, relative to the root), from any form a user gives."""
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            candidate = candidate.resolve().relative_to(root)
        except ValueError as exc:
            raise QueryError(f"{path} is outside the corpus {root}") from exc
    return candidate.as_posix().removeprefix("./")


def corpus_file(root: Path, path: str) -> str:
    """A corpus path with `.` and `..` resolved, refused when it names no file or climbs out of
    the corpus: a filter on `../../etc/passwd` is a mistake to name, not an empty list."""
    import posixpath

    normal = posixpath.normpath(corpus_path(root, path)) if path.strip() else "."
    if normal == ".":
        raise QueryError(f"{path!r} names no file", "give a path relative to the corpus root")
    if normal == ".." or normal.startswith("../"):
        raise QueryError(f"{path} is outside the corpus {root}",
                         "give a path relative to the corpus root")
    return normal
