"""Untrusted repositories and what peek stores: git runs neutralized and writes nothing.

A corpus's `.git/config` may name an fsmonitor hook, hooks, a pager, an external diff, textconv
and clean/smudge filters; none of them may run, `.git/index` must stay byte-identical, and a
remote URL's credentials must never reach the store.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from helpers import write_tree
from sqlalchemy.exc import OperationalError

from peek.cli.mcp_server import tool_result
from peek.gitutil import run_git, strip_credentials
from peek.service import Peek

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.email=t@t", "-c", "user.name=t", *args],
                   check=True, capture_output=True)


@pytest.fixture
def evil_repo(tmp_path: Path) -> tuple[Path, Path]:
    """A repository whose config tries to run a program on every git call."""
    root = write_tree(tmp_path / "repo", {"a.py": "def a():\n    return 1\n",
                                          "b.txt": "plain\n"})
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "init")
    git(root, "remote", "add", "origin", "https://user:TOKEN_REMOTE@example.org/r.git")
    marker = tmp_path / "pwned"
    payload = f"touch {marker}"
    hook = root / ".git" / "hooks" / "post-index-change"
    hook.write_text(f"#!/bin/sh\n{payload}\n")
    hook.chmod(0o755)
    with (root / ".git" / "config").open("a") as config:
        config.write(
            f"[core]\n\tfsmonitor = {payload}; echo\n\tpager = {payload}\n"
            f"[diff]\n\texternal = {payload}\n"
            f"[diff \"evil\"]\n\ttextconv = {payload}\n\tcommand = {payload}\n"
            f"[filter \"evil\"]\n\tclean = {payload}; cat\n\tsmudge = {payload}; cat\n"
            f"\tprocess = {payload}\n\trequired = true\n"
        )
    (root / ".gitattributes").write_text("* filter=evil diff=evil\n")
    (root / "a.py").write_text("def a():\n    return 2\n")  # dirty: diff must look at it
    return root, marker


def test_git_calls_run_no_program_from_the_repository(evil_repo: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    root, marker = evil_repo
    index_before = (root / ".git" / "index").read_bytes()
    for args in (("rev-parse", "HEAD"), ("remote", "get-url", "origin"),
                 ("diff", "--name-only", "--no-renames", "--no-ext-diff", "--no-textconv",
                  "HEAD"), ("ls-files", "--others", "--exclude-standard"), ("status",)):
        run_git(root, *args)
    assert not marker.exists()
    assert (root / ".git" / "index").read_bytes() == index_before


def test_index_record_and_memory_run_no_program(evil_repo: tuple[Path, Path],
                                               tmp_path: Path) -> None:
    root, marker = evil_repo
    index_before = (root / ".git" / "index").read_bytes()
    peek = Peek(root, tmp_path / "home")
    try:
        peek.index()
        peek.record({"question": "where is a", "steps": [
            {"tool": "read_file", "args": {"path": "a.py"}, "paths": ["a.py"], "ok": True}],
            "answer": "", "citations": []})
        peek.memory_invalidate()
        peek.status()
    finally:
        peek.close()
    assert not marker.exists()
    assert (root / ".git" / "index").read_bytes() == index_before
    with sqlite3.connect(tmp_path / "home" / "peek.db") as conn:
        remote = conn.execute("SELECT git_remote FROM corpora").fetchone()[0]
    assert remote == "https://example.org/r.git"


@pytest.mark.parametrize(("url", "clean"), [
    ("https://user:TOKEN@example.org/r.git", "https://example.org/r.git"),
    ("https://TOKEN@github.com/o/r", "https://github.com/o/r"),
    ("https://x-access-token:TOKEN@github.com/o/r.git", "https://github.com/o/r.git"),
    ("http://a:b@host:8080/r", "http://host:8080/r"),
    ("ssh://git:TOKEN@host/r.git", "ssh://host/r.git"),
    ("git@github.com:o/r.git", "git@github.com:o/r.git"),
    ("user:TOKEN@host:r.git", "host:r.git"),
    ("https://example.org/r.git", "https://example.org/r.git"),
    ("/srv/git/r.git", "/srv/git/r.git"),
])
def test_credentials_are_stripped_from_remote_urls(url: str, clean: str) -> None:
    assert strip_credentials(url) == clean


def test_store_files_are_private(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "c", {"a.py": "x = 1\n"})
    peek = Peek(root, tmp_path / "home")
    try:
        peek.index()
    finally:
        peek.close()
    for path in (tmp_path / "home").iterdir():
        if path.name.startswith("peek.db"):
            assert path.stat().st_mode & 0o077 == 0, path
    assert (tmp_path / "home").stat().st_mode & 0o077 == 0


def test_unsafe_tools_are_not_retried_on_a_busy_store() -> None:
    calls = []

    def busy() -> dict[str, object]:
        calls.append(1)
        raise OperationalError("UPDATE x", {}, Exception("database is locked"))

    assert tool_result(busy, retry=False).is_error
    assert len(calls) == 1
    calls.clear()
    ok = {"n": 0}

    def flaky() -> dict[str, object]:
        ok["n"] += 1
        if ok["n"] < 3:
            raise OperationalError("SELECT 1", {}, Exception("database is locked"))
        return {"done": True}

    result = tool_result(flaky)
    assert not result.is_error and json.loads(result.content[0].text) == {"done": True}


def test_cited_files_are_read_beneath_the_root_with_the_cap(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A cited symlink out of the corpus has no sha; a cited file over the cap is not read."""
    from peek.blobs import working_tree_sha

    outside = tmp_path / "passwd"
    outside.write_text("root:x:0:0\n")
    root = write_tree(tmp_path / "c", {"a.py": "x = 1\n", "big.txt": "y" * 5000})
    (root / "link").symlink_to(outside)
    assert working_tree_sha("a.py", root) is not None
    assert working_tree_sha("link", root) is None
    assert working_tree_sha("../passwd", root) is None
    monkeypatch.setenv("PEEK_MAX_FILE_BYTES", "1000")
    assert working_tree_sha("big.txt", root) is None
