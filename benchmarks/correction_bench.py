"""Corrections benchmark: does correcting wrong outcomes give back what clean history teaches?

A history replay (`peek eval --replay` rows) run three ways on scratch stores, per corpus:
- clean: every row is asked, scored and recorded with its true files (the learned arm);
- poisoned: the warm-up half is recorded with wrong files (the warm-up rows' file lists
  shuffled among them, seed 0), the later half truthfully;
- corrected: as poisoned, then every warm-up outcome is corrected (`record --correct`, the SDK's
  `correct=True`) before the later half.
Recall@5 and MRR are scored on the later half of each corpus, as the replay reports them. The
poisoned rows are a worst case a host could produce (every early report wrong); the question is
whether correcting them recovers the clean run's ranking, and at what cost per correction.

    python benchmarks/correction_bench.py ../shared/eval/replay-dev.jsonl ../peek-corpora
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from peek.agent.session import Budgets
from peek.evals.evaluate import Scored, score, scratch_stores, summarize
from peek.evals.replay import ReplayRow, check_gold, load_replay, resolve_corpora
from peek.service import Peek

MODES = ("clean", "poisoned", "corrected")


def shuffled(rows: Sequence[ReplayRow], seed: int = 0) -> list[tuple[str, ...]]:
    """The rows' gold file lists, permuted among the rows (a wrong report for most of them)."""
    golds = [r.gold_files for r in rows]
    random.Random(seed).shuffle(golds)
    return golds


def run(peek: Peek, rows: Sequence[ReplayRow], mode: str, seconds: list[float]) -> list[Scored]:
    """Replay one corpus in one mode; returns the later half's scores."""
    half = len(rows) // 2
    wrong = shuffled(rows[:half]) if mode != "clean" else [r.gold_files for r in rows[:half]]
    sessions = []
    for row, told in zip(rows[:half], wrong, strict=True):
        session = peek.ask(row.question, None, Budgets()).session
        peek.record(session=session, edited=list(told), success=True)
        sessions.append(session)
    if mode == "corrected":
        for row, session in zip(rows[:half], sessions, strict=True):
            start = time.perf_counter()
            peek.record(session=session, edited=list(row.gold_files), success=True, correct=True)
            seconds.append(time.perf_counter() - start)
    out = []
    for row in rows[half:]:
        result = peek.ask(row.question, None, Budgets())
        out.append(score(result, row.as_question(), 0.0))
        peek.record(session=result.session, edited=list(row.gold_files), success=True)
    return out


def main() -> None:
    """Replay each corpus in each mode and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=Path)
    parser.add_argument("corpora", type=Path)
    args = parser.parse_args()
    rows = load_replay(args.rows)
    found = resolve_corpora(rows, [args.corpora])
    kept, _ = check_gold(rows, found)
    by_corpus: dict[str, list[ReplayRow]] = {}
    for r in kept:
        by_corpus.setdefault(r.corpus, []).append(r)
    scores: dict[str, dict[str, list[Scored]]] = {m: {} for m in MODES}
    seconds: list[float] = []
    with scratch_stores(None) as scratch:
        for name, items in by_corpus.items():
            base = scratch.fresh(found[name], f"{name}/base")
            base.index()
            for mode in MODES:
                scores[mode][name] = run(scratch.copy(base, f"{name}/{mode}"), items, mode,
                                         seconds)
    print("\n## Later halves after a poisoned warm-up, with and without corrections\n")
    print("| mode | " + " | ".join(f"{c} R@5" for c in by_corpus) + " | all R@5 | all MRR |")
    print("| --- " * (len(by_corpus) + 3) + "|")
    for mode in MODES:
        per = [summarize(scores[mode][c])["recall@5"] for c in by_corpus]
        both = summarize([s for c in by_corpus for s in scores[mode][c]])
        print(f"| {mode} | " + " | ".join(f"{v:.4f}" for v in per)
              + f" | {both['recall@5']:.4f} | {both['mrr']:.4f} |")
    print(f"\n{len(seconds)} corrections, p50 {statistics.median(seconds) * 1000:.0f} ms each")


if __name__ == "__main__":
    main()
