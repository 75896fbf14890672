"""kill -9 trials: index, record, memory ingest and record --correct killed at random moments leave
a working store.

Each trial starts the real `peek` script, kills it with SIGKILL after a random delay, then
checks the store: SQLite's integrity check passes, `peek status` works, and running the same
command again completes. Slow (real subprocesses, dozens of kills): run with `-m slow`.
"""

from __future__ import annotations

import json
import random
import shutil
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


def learned_state(home: Path, root: Path) -> dict[str, object]:
    """What a correction must leave behind, whatever moment an earlier try was killed at: the
    outcome, the ranker, the map's entries and the audit log (ids and times aside)."""
    env = {"PEEK_HOME": str(home)}
    outcomes = json.loads(run_peek("outcomes", str(root), "--json", env=env).stdout)
    log = json.loads(run_peek("corrections", str(root), "--json", env=env).stdout)
    entries = json.loads(run_peek("map", str(root), "--json", env=env).stdout)["entries"]
    with sqlite3.connect(home / "peek.db") as conn:
        weights, updates = conn.execute("SELECT weights, updates FROM ranker_state").fetchone()
    return {"outcomes": [(o["session"], o["edited"], o["success"]) for o in outcomes["outcomes"]],
            "log": [(c["reason"], c["before"], c["after"]) for c in log["corrections"]],
            "entries": sorted((e["section"], e["text"], e["score"]) for e in entries),
            "ranker": ({k: round(v, 5) for k, v in json.loads(weights).items()}, updates)}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_correction_killed_at_any_moment_completes_when_run_again(tmp_path: Path) -> None:
    """`record --correct` is a retraction then a record (two transactions): killed anywhere,
    the store stays whole, and running it again ends exactly where an unkilled run does."""
    root = corpus(tmp_path)
    template = tmp_path / "template"
    env = {"PEEK_HOME": str(template)}
    assert run_peek("index", str(root), env=env).returncode == 0
    asked = run_peek("ask", str(root), "where are redirects followed?", "--json", env=env)
    session = json.loads(asked.stdout)["session"]
    wrong = run_peek("record", str(root), "--session", session, "--edited", "docs/guide.md",
                     "--success", env=env)
    assert wrong.returncode == 0, wrong.stderr
    args = ["record", str(root), "--session", session, "--correct", "--edited",
            "src/http/session.py", "--success"]

    def fresh(name: str) -> Path:
        home = tmp_path / name
        shutil.copytree(template, home)
        return home

    clean = fresh("clean")
    start = time.perf_counter()
    assert run_peek(*args, env={"PEEK_HOME": str(clean)}).returncode == 0
    took = time.perf_counter() - start  # kills spread over the run, densest in its last 40%
    expected = learned_state(clean, root)
    assert expected["outcomes"] == [(session, ["src/http/session.py"], True)]
    rng = random.Random("correct")
    for trial in range(2 * TRIALS):
        home = fresh(f"trial{trial}")
        kill_after(args, home, took * rng.choice([rng.uniform(0.2, 1.0), rng.uniform(0.6, 1.0)]))
        check_store(home, root)
        again = run_peek(*args, env={"PEEK_HOME": str(home)})
        assert again.returncode == 0, again.stderr
        assert learned_state(home, root) == expected, f"trial {trial}"
