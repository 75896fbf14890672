"""`peek memory forget` end to end: the CLI in a fresh process on a memory of ~2,000 turns.

Run: .venv/bin/python benchmarks/forget_bench.py [--eval ../shared/eval] [--turns 2000]
       [--repeats 3]

The LoCoMo conversations are ingested (as `peek memory ingest` does) into one corpus until it
holds `--turns` turns; each case then runs on a fresh copy of that store, `--repeats` times:
`peek memory forget` as a subprocess (wall time, imports included), and the library's
`forget_turns` in this process (the transaction alone). `peek memory show` in a fresh process
is the floor a command pays before any work (imports, opening the store). Cases: one turn in
the middle, the newest turn, five turns far apart, a whole session, and a damaged turn (its
text unreadable, so SQLite's contentless turn index is rebuilt instead of edited).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"
PEEK = Path(sys.executable).with_name("peek")


def locomo_pass(sample: dict[str, Any], lap: int, n: int) -> list[dict[str, Any]]:
    """One LoCoMo conversation as turns (`memory_bench`'s), under ids unique to this pass."""
    from memory_bench import locomo_turns

    return [{**t, "id": f"L{lap}C{n}:{t['id']}", "session": f"L{lap}C{n}:{t['session']}"}
            for t in locomo_turns(sample)]


def build(locomo: Path, work: Path, target: int) -> tuple[Path, Path]:
    """A corpus whose memory holds `target` turns."""
    from peek.memory.ingest import ingest_turns
    from peek.service import Peek

    data = json.loads(locomo.read_text())
    root = work / "corpus"
    root.mkdir()
    (root / "README.md").write_text("memory to forget from\n")
    home = work / "home"
    with Peek(root, home) as peek:
        peek.index()
        total, n = 0, 0
        while total < target:
            turns = locomo_pass(data[n % len(data)], n // len(data), n % len(data))
            turns = turns[: target - total]
            ingest_turns(peek.db, peek.corpus_id, turns)
            total += len(turns)
            n += 1
    return root, home


def cases(db: Path) -> dict[str, list[str]]:
    """Turn ids per case, read from the store."""
    with closing(sqlite3.connect(db)) as conn:
        ids = [r[0] for r in conn.execute("SELECT turn_id FROM memory_turns ORDER BY seq")]
        session = conn.execute("SELECT session FROM memory_turns WHERE seq >= ? ORDER BY seq "
                               "LIMIT 1", (len(ids) // 3,)).fetchone()[0]
        whole = [r[0] for r in conn.execute("SELECT turn_id FROM memory_turns WHERE session = ? "
                                            "ORDER BY seq", (session,))]
    step = len(ids) // 5
    return {"one turn (middle)": [ids[len(ids) // 2]], "the newest turn": [ids[-1]],
            "5 turns far apart": [ids[i * step + 7] for i in range(5)],
            f"a session ({len(whole)} turns)": ["--session", session],
            "a damaged turn": [ids[len(ids) // 4]]}


def damage(db: Path, turn_id: str) -> None:
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE memory_turns SET body = ? WHERE turn_id = ?", (b"\x01junk", turn_id))


def cli_ms(root: Path, home: Path, argv: list[str]) -> float:
    env = {**os.environ, "PEEK_HOME": str(home)}
    started = time.perf_counter()
    done = subprocess.run([str(PEEK), *argv], env=env, capture_output=True, text=True)
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise SystemExit(f"peek {' '.join(argv)} failed: {done.stderr.strip()}")
    return elapsed


def library_ms(root: Path, home: Path, args: list[str]) -> float:
    """`forget_turns` alone, inside one write transaction (sessions resolved first)."""
    from peek.memory.forget import forget_turns, session_turn_ids
    from peek.service import Peek

    with Peek(root, home) as peek:
        peek.corpus_id  # noqa: B018 - open the store before the clock starts
        started = time.perf_counter()
        with peek.db.write() as conn:
            ids = session_turn_ids(conn, peek.corpus_id, args[1]) if args[0] == "--session" \
                else args
            forget_turns(conn, peek.corpus_id, ids, "benchmark")
        return (time.perf_counter() - started) * 1000


def trial(root: Path, home: Path, work: Path, name: str, args: list[str], how: str) -> float:
    copy = work / f"trial-{how}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(home, copy)
    if name == "a damaged turn":
        damage(copy / "peek.db", args[0])
    if how == "cli":
        return cli_ms(root, copy, ["memory", "forget", str(root), *args, "--reason", "bench"])
    return library_ms(root, copy, args)


def sizes(db: Path) -> str:
    with closing(sqlite3.connect(db)) as conn:
        counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                  for t in ("memory_turns", "memory_windows", "memory_episodes", "memory_nodes")}
    return ", ".join(f"{n} {t.removeprefix('memory_')}" for t, n in counts.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, default=EVAL)
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="peek-forget-bench-"))
    try:
        started = time.perf_counter()
        root, home = build(args.eval / "locomo10.json", work, args.turns)
        print(f"# peek memory forget ({sizes(home / 'peek.db')}; built in "
              f"{time.perf_counter() - started:.0f} s)\n")
        floor = [cli_ms(root, home, ["memory", "show", str(root)]) for _ in range(args.repeats)]
        print("| case | CLI end to end, median ms | max ms | forget_turns alone, median ms "
              "| max ms |")
        print("|---|---|---|---|---|")
        print(f"| `peek memory show` (the floor: start, imports, open) | "
              f"{statistics.median(floor):.0f} | {max(floor):.0f} | - | - |")
        for name, ids in cases(home / "peek.db").items():
            cli = [trial(root, home, work, name, ids, "cli") for _ in range(args.repeats)]
            lib = [trial(root, home, work, name, ids, "lib") for _ in range(args.repeats)]
            print(f"| {name} | {statistics.median(cli):.0f} | {max(cli):.0f} | "
                  f"{statistics.median(lib):.0f} | {max(lib):.0f} |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
