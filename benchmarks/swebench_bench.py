"""Offline localization on shared/eval/swebench-dev.jsonl, per corpus and overall, plus learning.

Usage: python benchmarks/swebench_bench.py CORPORA_DIR [--home DIR] [--model M]
CORPORA_DIR holds the unpacked sdists (sympy-1.14.0/, ...): see shared/eval/README.md.
Each corpus is indexed into --home (default: a temporary folder) if needed. Scoring is
file-level recall@1/5/10 and MRR of the answer's cited files, through `peek eval`'s code.
With `--learn`, every corpus with >= 6 questions is also scored with its first half taught
(asked, then recorded with the gold files as the user's edits) against an empty map.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from peek.agent.registry import resolve_model
from peek.agent.session import Budgets
from peek.evals.evaluate import GoldQuestion, evaluate
from peek.service import Peek

DATA = Path(__file__).resolve().parents[2] / "shared" / "eval" / "swebench-dev.jsonl"
KEYS = ("n", "recall@1", "recall@5", "recall@10", "mrr", "seconds_mean")


def load(path: Path) -> dict[str, list[GoldQuestion]]:
    """Questions grouped by corpus folder name (NAME-VERSION)."""
    groups: dict[str, list[GoldQuestion]] = defaultdict(list)
    for line in path.read_text().splitlines():
        raw = json.loads(line)
        name = raw["pypi"].replace("==", "-")
        groups[name].append(GoldQuestion(raw["id"], raw["question"], tuple(raw["gold_files"])))
    return dict(groups)


def ensure_indexed(root: Path, home: Path) -> None:
    peek = Peek(root, home)
    if not peek.indexed:
        peek.index()


def row(name: str, report: dict[str, Any]) -> str:
    return f"| {name:<22} | " + " | ".join(f"{report.get(k, ''):>9}" for k in KEYS) + " |"


def weighted(reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Micro average over items (weights = n) and the macro average over corpora."""
    total = sum(r["n"] for r in reports.values())
    micro: dict[str, Any] = {"n": total}
    macro: dict[str, Any] = {"n": len(reports)}
    for k in KEYS[1:]:
        micro[k] = round(sum(r[k] * r["n"] for r in reports.values()) / total, 4)
        macro[k] = round(statistics.mean(r[k] for r in reports.values()), 4)
    return {"micro": micro, "macro": macro}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpora", type=Path)
    parser.add_argument("--home", type=Path)
    parser.add_argument("--model")
    parser.add_argument("--learn", action="store_true")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="peek-swebench-"))
    model = resolve_model(args.model)
    groups = load(DATA)
    reports = {}
    for name, items in sorted(groups.items()):
        root = args.corpora / name
        ensure_indexed(root, home)
        reports[name] = evaluate(root, items, home=home, model=model, budgets=Budgets())
    print(f"| {'corpus':<22} | " + " | ".join(f"{k:>9}" for k in KEYS) + " |")
    for name, report in reports.items():
        print(row(name, report))
    for label, report in weighted(reports).items():
        print(row(f"ALL ({label})", report))
    if args.learn:
        print_learning(args.corpora, groups, home, model)


def print_learning(corpora: Path, groups: dict[str, list[GoldQuestion]], home: Path,
                   model: Any) -> None:
    """Learned map vs empty map on the second half of each corpus with >= 6 questions."""
    print("\nlearning: first half taught, second half scored (learned map vs empty map)")
    print(f"| {'corpus':<22} | {'n':>3} | {'r@5 map':>8} | {'r@5 none':>8} | {'delta':>6} |"
          f" {'mrr map':>8} | {'mrr none':>8} |")
    for name, items in sorted(groups.items()):
        if len(items) < 6:
            continue
        half = len(items) // 2
        rep = evaluate(corpora / name, items, home=home, model=model, budgets=Budgets(),
                       learn_n=half)
        none = rep["no_map"]
        delta = rep["recall@5"] - none["recall@5"]
        print(f"| {name:<22} | {rep['n']:>3} | {rep['recall@5']:>8} | {none['recall@5']:>8} | "
              f"{delta:>+6.3f} | {rep['mrr']:>8} | {none['mrr']:>8} |")


if __name__ == "__main__":
    main()
