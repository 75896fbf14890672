"""Context-map benchmark: deterministic update and render latency, store growth.

Run: .venv/bin/python benchmarks/map_bench.py [--updates 1000] [--budget 1024]
It builds a synthetic corpus in a temporary folder, indexes it into a temporary PEEK_HOME,
fills the map to its budget with the deterministic policy, then measures. Targets (issue 3):
update p50 <= 20 ms on a full 1024-token map, render p50 <= 2 ms, store < 5 MB after 1,000
updates.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from peek.contextmap.policy import CachePolicy
    from peek.db import Database

WORDS = ("parser lexer token cache index session adapter retry redirect cookie schema config "
         "loader writer reader codec buffer stream socket frame header payload router handler "
         "plugin registry scheduler worker queue lock pool metric logger tracer").split()


def write_corpus(root: Path, n_files: int, seed: int) -> None:
    """Python files with classes, functions and cross-imports, like a small library."""
    rnd = random.Random(seed)
    for i in range(n_files):
        pkg = f"pkg/{WORDS[i % 8]}"
        other = f"from pkg.{WORDS[(i + 1) % 8]} import mod{(i + 1) % n_files}"
        lines = [f'"""Module {i}."""', other]
        for j in range(6):
            name = f"{rnd.choice(WORDS).title()}{rnd.choice(WORDS).title()}{i}_{j}"
            lines += ["", "", f"class {name}:", f'    """{rnd.choice(WORDS)} things."""', "",
                      "    def run(self, value):", f"        return value + {j}", ""]
        path = root / pkg / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def trajectory(rnd: random.Random, paths: list[str]) -> dict[str, object]:
    """A plausible session: a question of 3 words, a few reads, one or two citations."""
    cited = rnd.sample(paths, rnd.randint(1, 2))
    question = f"Where is the {' '.join(rnd.sample(WORDS, 3))} logic?"
    return {
        "question": question,
        "steps": [{"tool": "read", "args": {"path": p}, "paths": [p], "ok": True}
                  for p in rnd.sample(paths, 3) + cited],
        "answer": "See " + ", ".join(cited),
        "citations": [{"path": p, "start_line": 3, "end_line": 3 + rnd.randint(5, 30)}
                      for p in cited],
    }


def graph_seconds(n_files: int, seed: int) -> float:
    """Build the import/reference graph of a synthetic sympy-sized corpus and run PageRank."""
    import numpy as np

    from peek.retrieval.graph import FileRow, SymbolRow, build_graph

    rng = np.random.default_rng(seed)
    names = [f"name_{i}" for i in range(n_files * 4)]
    files = [FileRow(i, f"pkg/m{i}.py", "python", f"pkg.m{(i * 7) % n_files}",
                     " ".join(names[j] for j in rng.choice(len(names), 120, replace=False)))
             for i in range(n_files)]
    symbols = [SymbolRow(i % n_files, n, n, "function", 1, 2) for i, n in enumerate(names)]
    started = time.perf_counter()
    graph = build_graph(files, symbols)
    graph.top_symbols(20, graph.ranks())
    return time.perf_counter() - started


def p50_ms(samples: list[float]) -> float:
    """Median in milliseconds."""
    return statistics.median(samples) * 1000


@dataclass
class Bench:
    """The store, corpus and policy under measurement."""

    tmp: Path
    db: Database
    corpus_id: int
    policy: CachePolicy
    paths: list[str]


def setup(budget: int, n_files: int, seed: int) -> Bench:
    """A synthetic corpus indexed into a temporary PEEK_HOME."""
    from peek.contextmap.policy import CachePolicy
    from peek.db import open_database
    from peek.retrieval.indexer import index_corpus

    tmp = Path(tempfile.mkdtemp(prefix="peek-map-bench-"))
    os.environ["PEEK_HOME"] = str(tmp / "home")
    root = (tmp / "corpus").resolve()
    write_corpus(root, n_files, seed)
    db = open_database(tmp / "home" / "peek.db")
    index_corpus(db, root, 1 << 20)
    with db.read() as conn:
        corpus_id = int(conn.exec_driver_sql("SELECT id FROM corpora").scalar_one())
    paths = sorted(str(p.relative_to(root)) for p in root.rglob("*.py"))
    return Bench(tmp, db, corpus_id, CachePolicy(db, corpus_id, root=root, budget=budget), paths)


def time_updates(bench: Bench, updates: int, budget: int, seed: int) -> list[float]:
    """Seconds per update, counting only updates that left the map at least 90% full."""
    rnd = random.Random(seed)
    full: list[float] = []
    for _ in range(updates):
        started = time.perf_counter()
        result = bench.policy.update(trajectory(rnd, bench.paths))
        if result.tokens >= 0.9 * budget:
            full.append(time.perf_counter() - started)
    return full


def time_calls(fn: Callable[[], object], repeat: int) -> list[float]:
    """Seconds per call of `fn`."""
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def store_mb(bench: Bench) -> float:
    """Size of the store's files after closing it and checkpointing the WAL."""
    bench.db.close()
    with sqlite3.connect(bench.tmp / "home" / "peek.db") as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(f.stat().st_size for f in (bench.tmp / "home").glob("peek.db*")) / 1e6


def run(updates: int, budget: int, n_files: int, seed: int) -> list[tuple[str, str, str, str]]:
    """Measure; returns table rows (metric, value, target, ok)."""
    from peek.contextmap.render import render_entries
    from peek.contextmap.store import MapStore

    bench = setup(budget, n_files, seed)
    full = time_updates(bench, updates, budget, seed)
    entries = list(MapStore(bench.db, bench.corpus_id).load().entries.values())
    render = p50_ms(time_calls(lambda: render_entries(entries), 200))
    view_ms = p50_ms(time_calls(bench.policy.view, 50))
    view = bench.policy.view()
    update = p50_ms(full)
    size = store_mb(bench)
    shutil.rmtree(bench.tmp, ignore_errors=True)
    return [
        ("deterministic update p50 (full map)", f"{update:.2f} ms", "<= 20 ms", _ok(update <= 20)),
        ("  updates measured on a full map", f"{len(full)} of {updates}", "", ""),
        ("render p50", f"{render:.3f} ms", "<= 2 ms", _ok(render <= 2)),
        ("view p50 (freshness + render + tokens)", f"{view_ms:.2f} ms", "", ""),
        ("map tokens / budget", f"{view.tokens} / {view.budget_tokens}", "<= budget",
         _ok(view.tokens <= view.budget_tokens)),
        ("map entries", str(len(view.entries)), "", ""),
        (f"store size after {updates} updates", f"{size:.2f} MB", "< 5 MB", _ok(size < 5)),
        ("graph + PageRank + top symbols, 1,500 files", f"{graph_seconds(1500, seed):.2f} s",
         "", ""),
    ]


def _ok(flag: bool) -> str:
    return "yes" if flag else "NO"


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    """A plain fixed-width table."""
    header = ("metric", "value", "target", "ok")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def main() -> None:
    """Parse arguments, run, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--budget", type=int, default=1024)
    parser.add_argument("--files", type=int, default=120)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print_table(run(args.updates, args.budget, args.files, args.seed))


if __name__ == "__main__":
    main()
