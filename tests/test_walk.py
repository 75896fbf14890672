"""Corpus walking: ignore files, binaries, size caps, symlinks, special files, git identity."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from peek.blobs import git_blob_sha, is_binary
from peek.retrieval.walk import git_state, walk_corpus


def paths(root: Path, cap: int = 1 << 20) -> list[str]:
    return [f.path for f in walk_corpus(root, cap).files]


def test_gitignore_nested_and_negated(make_corpus) -> None:
    root = make_corpus({
        ".gitignore": "*.log\n!keep.log\nbuild/\n",
        "a.py": "x = 1\n", "debug.log": "noise\n", "keep.log": "signal\n",
        "build/out.py": "generated\n",
        "pkg/.gitignore": "secret.txt\n", "pkg/secret.txt": "s\n", "pkg/mod.py": "y = 2\n",
        "other/secret.txt": "visible\n",
    })
    assert paths(root) == [".gitignore", "a.py", "keep.log", "other/secret.txt",
                           "pkg/.gitignore", "pkg/mod.py"]


def test_peekignore_and_default_ignores(make_corpus) -> None:
    root = make_corpus({
        ".peekignore": "docs/drafts/\n", "docs/drafts/x.md": "draft\n", "docs/final.md": "ok\n",
        "node_modules/lib/index.js": "x\n", "__pycache__/m.cpython-311.pyc": b"\0\1",
        ".git/config": "[core]\n",
    })
    assert paths(root) == [".peekignore", "docs/final.md"]


def test_size_cap_and_binary_suffix(make_corpus) -> None:
    root = make_corpus({"big.txt": "x" * 2000, "small.txt": "y\n", "logo.png": b"\x89PNG"})
    report = walk_corpus(root, 1000)
    assert [f.path for f in report.files] == ["small.txt"]
    assert report.too_large == ["big.txt"]
    assert report.binary_suffix == 1


def test_nul_sniff() -> None:
    assert is_binary(b"abc\0def")
    assert not is_binary("héllo".encode())


def test_symlinks_never_leave_the_root(make_corpus, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("password = 1\n")
    root = make_corpus({"real.py": "a = 1\n", "sub/inner.py": "b = 2\n"})
    os.symlink(outside / "secret.py", root / "leak.py")
    os.symlink(outside, root / "leakdir")
    os.symlink(root / "real.py", root / "alias.py")
    os.symlink(root / "sub", root / "subalias")
    report = walk_corpus(root.resolve(), 1 << 20)
    assert [f.path for f in report.files] == ["alias.py", "real.py", "sub/inner.py"]
    assert report.outside_symlinks == 1


def test_fifo_is_skipped_without_blocking(make_corpus) -> None:
    root = make_corpus({"a.py": "a = 1\n"})
    os.mkfifo(root / "pipe")
    report = walk_corpus(root, 1 << 20)
    assert [f.path for f in report.files] == ["a.py"]
    assert report.special == 1


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_blob_sha_and_git_state_match_git(make_corpus) -> None:
    root = make_corpus({"a.py": "print('hi')\n"})
    git = ["git", "-C", str(root), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "remote", "add", "origin", "https://example.org/r.git"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    expected = subprocess.run([*git, "hash-object", "a.py"], capture_output=True, text=True).stdout
    assert git_blob_sha((root / "a.py").read_bytes()) == expected.strip()
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    state = git_state(root)
    assert state is not None
    assert state.head == head.strip()
    assert state.remote == "https://example.org/r.git"


def test_plain_folder_has_no_git_state(make_corpus) -> None:
    assert git_state(make_corpus({"a.txt": "a\n"})) is None
