"""A corpus file's terminal escape sequences reach a person's terminal as visible text.

`peek ask`, `peek search` and `peek map` print lines read from the corpus; on a terminal (a real
pseudo-terminal here) an `ESC]0;title BEL` or a colour code must be shown escaped, never obeyed.
Through a pipe the bytes stay exact, and `--json` on a terminal stays valid JSON.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import PEEK_BIN, run_peek, write_tree

from peek.cli.terminal import escape_controls

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")

HOSTILE = ('def evil_function():\n'
           '    x = "\x1b[31mRED\x1b[0m \x1b]0;pwned\x07 \x9b2J evil"\n'
           '    return x\n')


def on_terminal(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run peek with its stdout on a pseudo-terminal; what the terminal received, decoded."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([str(PEEK_BIN), *args], stdout=follower, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env={**os.environ, **env})
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(timeout=120), b"".join(chunks).decode("utf-8").replace("\r\n", "\n")


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """An indexed corpus whose only file holds colour, title and 8-bit CSI sequences."""
    root = write_tree(tmp_path / "repo", {"mod.py": HOSTILE})
    env = {"PEEK_HOME": str(tmp_path / "home")}
    assert run_peek("index", str(root), env=env).returncode == 0
    return root, env


def test_an_answer_on_a_terminal_shows_escape_sequences_as_text(
        hostile: tuple[Path, dict[str, str]]) -> None:
    root, env = hostile
    code, seen = on_terminal("ask", str(root), "where is evil_function", env=env)
    assert code == 0
    assert "evil_function" in seen
    assert "\x1b" not in seen and "\x07" not in seen and "\x9b" not in seen
    assert "\\u001b]0;pwned\\u0007" in seen and "\\u009b2J" in seen


def test_a_pipe_gets_the_exact_bytes(hostile: tuple[Path, dict[str, str]]) -> None:
    root, env = hostile
    asked = run_peek("ask", str(root), "where is evil_function", env=env)
    assert asked.returncode == 0
    assert "\x1b]0;pwned\x07" in asked.stdout


def test_json_on_a_terminal_stays_valid_with_the_same_values(
        hostile: tuple[Path, dict[str, str]]) -> None:
    root, env = hostile
    code, seen = on_terminal("search", str(root), "evil function", "--json", env=env)
    piped = run_peek("search", str(root), "evil function", "--json", env=env)
    assert code == 0 and "\x9b" not in seen
    assert json.loads(seen) == json.loads(piped.stdout)


def test_an_error_line_escapes_what_the_user_typed(tmp_path: Path) -> None:
    missing = tmp_path / "no\x1b]0;pwned\x07where"
    failed = run_peek("index", str(missing), env={"PEEK_HOME": str(tmp_path / "home")})
    assert failed.returncode != 0
    assert "\x1b" not in failed.stderr and "\\u001b]0;pwned\\u0007" in failed.stderr
    assert failed.stderr.count("\n") == 1


def test_tab_and_newline_pass_and_every_other_control_is_escaped() -> None:
    assert escape_controls("a\tb\nc") == "a\tb\nc"
    assert (escape_controls("\x00\x1b\x7f\x85\x9f ok é")
            == "\\u0000\\u001b\\u007f\\u0085\\u009f ok é")
