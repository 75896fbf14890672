"""History replay: does the next session get better? Recall with learning on and off, and its cost.

    python benchmarks/replay_bench.py ../shared/eval/replay-dev.jsonl CORPORA_DIR [--cost-only]
        [--quality-only] [--cost-corpus NAME]

Part 1 (quality) replays every row exactly as `peek eval --replay` does (ask, score, record the
edited files; the off arm asks on a fresh store with learning off) and prints recall@1/5/10 and
MRR on the later half of each corpus, the gain, and recall@5 per block of 50 rows.
Part 2 (cost) learns sympy's rows (or `--cost-corpus`'s) on a scratch store, oldest first, and
reports the p50 of a warm `ask` and `record` once 300 sessions are learned, and the store's
growth per session (after a WAL checkpoint, so the file holds everything), in total and per
table or index (SQLite's dbstat), with the part of each that is free space inside its pages
(rows rewritten in place, or too large for two to share a page).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from contextlib import closing
from pathlib import Path

from peek.evals.replay import ReplayRow, load_replay, replay, resolve_corpora
from peek.service import Peek

COST_CORPUS = "sympy-1.14.0"
LEARNED = 300
MEASURED = 50


def quality(rows_file: Path, corpora: Path) -> None:
    """Replay every row on both arms and print the tables."""
    rows = load_replay(rows_file)
    start = time.perf_counter()
    report = replay(rows, resolve_corpora(rows, [corpora]))
    print(f"## Replay quality ({report['rows']} rows, {time.perf_counter() - start:.0f} s)\n")
    print("| arm | corpus | n | recall@1 | recall@5 | recall@10 | MRR |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for arm, data in report["arms"].items():
        for corpus, s in [*data["corpora"].items(), ("all", data["all"])]:
            print(f"| {arm} | {corpus} | {s['n']} | {s['recall@1']:.3f} | {s['recall@5']:.3f} "
                  f"| {s['recall@10']:.3f} | {s['mrr']:.3f} |")
    gains = report.get("gain_recall@5", {})
    print("\nrecall@5 gain (learned - off): "
          + ", ".join(f"{c} {g:+.3f}" for c, g in gains.items()))
    print("\nrecall@5 per block of 50 rows:")
    for arm, data in report["arms"].items():
        for corpus, curve in data["curve"].items():
            print(f"- {arm} {corpus}: {' '.join(f'{v:.2f}' for v in curve)}")


def store_bytes(peek: Peek) -> int:
    """The store's size once the WAL is checkpointed into the main file."""
    with closing(sqlite3.connect(peek.settings.db_path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return peek.settings.db_path.stat().st_size


def table_bytes(peek: Peek) -> dict[str, tuple[int, int]]:
    """Bytes per table or index and how many of them are free space inside its pages (SQLite's
    dbstat), to say where the growth goes; "(freelist)" counts wholly free pages."""
    with closing(sqlite3.connect(peek.settings.db_path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = conn.execute("SELECT name, SUM(pgsize), SUM(unused) FROM dbstat GROUP BY name"
                            ).fetchall()
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    return {**{name: (int(b), int(u)) for name, b, u in rows}, "(freelist)": (free * size,
                                                                             free * size)}


def growth_table(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]],
                 sessions: int) -> None:
    """Print the per-table growth per recorded session, largest first: its bytes, and how many
    of them are unused space in its pages (rows rewritten or not filling a page)."""
    names = after.keys() | before.keys()
    zero = (0, 0)
    grown = {n: tuple(a - b for a, b in zip(after.get(n, zero), before.get(n, zero), strict=True))
             for n in names}
    print(f"\n### Store growth per recorded session by table ({sessions} sessions, dbstat)\n")
    print("| table or index | KB per session | of which unused in its pages |\n| --- | --- | --- |")
    for name, (size, unused) in sorted(grown.items(), key=lambda item: -item[1][0]):
        if abs(size) / sessions >= 0.05 * 1024:
            print(f"| {name} | {size / sessions / 1024:.2f} | {unused / sessions / 1024:.2f} |")
    total, free = (sum(g[i] for g in grown.values()) for i in (0, 1))
    print(f"| all | {total / sessions / 1024:.2f} | {free / sessions / 1024:.2f} |")


def cost(rows_file: Path, corpora: Path, corpus: str = COST_CORPUS) -> None:
    """Warm ask/record p50 with LEARNED sessions learned, and bytes per recorded session."""
    rows = [r for r in load_replay(rows_file) if r.corpus == corpus]
    if len(rows) < LEARNED:
        raise SystemExit(f"{corpus} has {len(rows)} rows; the cost part needs {LEARNED}")
    root = resolve_corpora(rows, [corpora])[corpus]
    with tempfile.TemporaryDirectory(prefix="peek-replay-cost-") as home:
        peek = Peek(root, home)
        peek.index()
        before = store_bytes(peek)
        tables_before = table_bytes(peek)
        for row in rows[:LEARNED]:
            session = peek.ask(row.question).session
            peek.record(session=session, edited=list(row.gold_files), success=True)
        grown = (store_bytes(peek) - before) / LEARNED
        tables_after = table_bytes(peek)
        asks, records, sessions = [], [], []
        for row in rows[:MEASURED]:
            start = time.perf_counter()
            session = peek.ask(row.question + " (again)").session
            asks.append(time.perf_counter() - start)
            start = time.perf_counter()
            peek.record(session=session, edited=list(row.gold_files), success=True)
            records.append(time.perf_counter() - start)
            sessions.append(session)
        corrects, retracts = take_back(peek, sessions, rows[1:MEASURED + 1])
    print(f"\n## Replay cost on {corpus} with {LEARNED} sessions learned\n")
    print("| what | measured | target |\n| --- | --- | --- |")
    print(f"| warm ask p50 | {statistics.median(asks) * 1000:.0f} ms | <= 150 ms |")
    print(f"| record p50 | {statistics.median(records) * 1000:.0f} ms | <= 50 ms |")
    print(f"| store growth per recorded session | {grown / 1024:.1f} KB | <= 20 KB |")
    print(f"| record --correct p50 (retract + record) | {statistics.median(corrects) * 1000:.0f}"
          " ms | (none; record's is <= 50 ms) |")
    print(f"| record --retract p50 | {statistics.median(retracts) * 1000:.0f} ms | "
          "(none; record's is <= 50 ms) |")
    growth_table(tables_before, tables_after, LEARNED)


def take_back(peek: Peek, sessions: list[str], others: list[ReplayRow]
              ) -> tuple[list[float], list[float]]:
    """Seconds to correct each measured session's outcome (to the next row's files), then to
    retract it."""
    corrects, retracts = [], []
    for session, other in zip(sessions, others, strict=False):
        start = time.perf_counter()
        peek.record(session=session, edited=list(other.gold_files), success=True, correct=True)
        corrects.append(time.perf_counter() - start)
    for session in sessions:
        start = time.perf_counter()
        peek.retract(session)
        retracts.append(time.perf_counter() - start)
    return corrects, retracts


def main() -> None:
    """Parse arguments and run the parts asked for."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=Path)
    parser.add_argument("corpora", type=Path)
    parser.add_argument("--cost-only", action="store_true")
    parser.add_argument("--quality-only", action="store_true")
    parser.add_argument("--cost-corpus", default=COST_CORPUS,
                        help="the corpus (sdist folder name) of the cost part; it needs 300 rows")
    args = parser.parse_args()
    if not args.cost_only:
        quality(args.rows, args.corpora)
    if not args.quality_only:
        cost(args.rows, args.corpora, args.cost_corpus)


if __name__ == "__main__":
    main()
