"""kill -9 trials: index, record and memory ingest killed at random moments leave a working store.

Each trial starts the real `peek` script, kills it with SIGKILL after a random delay, then
checks the store: SQLite's integrity check passes, `peek status` works, and running the same
command again completes. Slow (real subprocesses, dozens of kills): run with `-m slow`.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from helpers import PEEK_BIN, SAMPLE, run_peek, write_tree

TRIALS = 8


def corpus(base: Path) -> Path:
    files = dict(SAMPLE)
    for n in range(300):
        files[f"gen/m{n}.py"] = f"def f{n}(x):\n    return x + {n}\n\nclass C{n}:\n    pass\n"
    return write_tree(base / "corpus", files).resolve()


def kill_after(args: list[str], home: Path, delay: float) -> None:
    env = {"PEEK_HOME": str(home), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([str(PEEK_BIN), *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)


def check_store(home: Path, root: Path) -> None:
    with sqlite3.connect(home / "peek.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    status = run_peek("status", str(root), "--json", env={"PEEK_HOME": str(home)})
    assert status.returncode == 0, status.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("command", ["index", "record", "ingest"])
def test_kill9_leaves_a_working_store(tmp_path: Path, command: str) -> None:
    root = corpus(tmp_path)
    home = tmp_path / "home"
    env = {"PEEK_HOME": str(home)}
    assert run_peek("index", str(root), env=env).returncode == 0
    traj = tmp_path / "t.json"
    traj.write_text(json.dumps({"question": "where are sessions", "steps": [
        {"tool": "read_file", "args": {"path": "src/http/session.py"},
         "paths": ["src/http/session.py"], "ok": True}], "answer": "", "citations": []}))
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps({"id": f"t{n}", "speaker": "user", "session": "s1",
                                       "text": f"turn {n} about sessions"}) + "\n"
                           for n in range(200)))
    args = {"index": ["index", str(root)], "record": ["record", str(root), "--trajectory",
                                                       str(traj)],
            "ingest": ["memory", str(root), "ingest", str(log)]}[command]
    rng = random.Random(command)
    for trial in range(TRIALS):
        if command == "index":
            (root / "gen" / f"m{trial}.py").write_text(f"def changed{trial}():\n    pass\n")
        kill_after(args, home, rng.uniform(0.2, 2.5))
        check_store(home, root)
    done = run_peek(*args, env=env)
    assert done.returncode == 0, done.stderr
    check_store(home, root)
