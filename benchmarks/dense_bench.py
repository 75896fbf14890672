"""Hybrid retrieval (BM25 + dense, RRF) against BM25 alone, and what dense costs at index time.

    python benchmarks/dense_bench.py CORPORA_DIR [--embedders static,hash]
        [--parts epbench,swebench,replay,cost] [--home DIR]

- epbench: the 19-chapter EpBench book as a corpus of one Markdown file per chapter;
  chapter recall@1/3/5 of `Peek.search` over the 276 questions with gold chapters.
- swebench: file recall@1/5/10 and MRR of offline `peek ask` (peek eval's code) on
  shared/eval/swebench-dev.jsonl, micro over items.
- replay: `peek eval --replay`'s learning arm on shared/eval/replay-dev.jsonl, recall on the
  later half of each corpus.
- cost: a cold index of sympy with dense off and on (same fresh home kind), the embedder's
  chunks/s, and the store's growth.
Each arm sets PEEK_DENSE; stores are indexed once with vectors and reused by the BM25 arm
(search ignores the dense index when PEEK_DENSE=off). Timings are upper bounds on a shared CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from peek.service import Peek

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"
KS_EP = (1, 3, 5)


@contextmanager
def dense(name: str) -> Iterator[None]:
    """PEEK_DENSE=name for the block."""
    old = os.environ.get("PEEK_DENSE")
    os.environ["PEEK_DENSE"] = name
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PEEK_DENSE", None)
        else:
            os.environ["PEEK_DENSE"] = old


def epbench(embedders: list[str], work: Path) -> None:
    """Chapter recall of search over the EpBench book, BM25 vs hybrid per embedder."""
    book = json.loads((EVAL / "epbench20" / "book_20.json").read_text())
    questions = [q for q in json.loads((EVAL / "epbench20" / "questions_20.json").read_text())
                 if q["correct_answer_chapters"]]
    print(f"\n## EpBench chapter recall ({len(questions)} questions with gold chapters)\n")
    print("| arm | recall@1 | recall@3 | recall@5 | index s |")
    print("| --- | --- | --- | --- | --- |")
    for arm in ["off", *embedders]:
        corpus = work / f"epbench-{arm}"
        corpus.mkdir(parents=True, exist_ok=True)
        for name, body in book.items():
            (corpus / f"chapter-{int(name.split()[1]):02d}.md").write_text(f"# {name}\n\n{body}")
        with dense(arm):
            peek = Peek(corpus, work / f"home-ep-{arm}")
            start = time.perf_counter()
            peek.index()
            seconds = time.perf_counter() - start
            recall = {k: [] for k in KS_EP}
            for q in questions:
                chapters = list(dict.fromkeys(int(h.path[8:10]) for h in peek.search(
                    q["question"], 50)))
                gold = set(q["correct_answer_chapters"])
                for k in KS_EP:
                    recall[k].append(len(gold & set(chapters[:k])) / len(gold))
        print(f"| {'BM25' if arm == 'off' else 'hybrid ' + arm} | "
              + " | ".join(f"{statistics.mean(recall[k]):.3f}" for k in KS_EP)
              + f" | {seconds:.1f} |")


def swebench(corpora: Path, embedders: list[str], home: Path) -> None:
    """Offline ask recall on swebench-dev, BM25 vs hybrid (one store, vectors for all)."""
    from swebench_bench import DATA, load  # type: ignore[import-not-found]

    from peek.agent.session import Budgets
    from peek.evals.evaluate import evaluate

    groups = load(DATA)
    print(f"\n## SWE-bench dev localization ({sum(map(len, groups.values()))} items)\n")
    print("| arm | recall@1 | recall@5 | recall@10 | MRR | s/question |")
    print("| --- | --- | --- | --- | --- | --- |")
    for arm in ["off", *embedders]:
        totals: dict[str, float] = {}
        n = 0
        with dense(arm):
            for name, items in sorted(groups.items()):
                peek = Peek(corpora / name, home)
                peek.index()
                report = evaluate(corpora / name, items, home=home, model=None,
                                  budgets=Budgets())
                for key in ("recall@1", "recall@5", "recall@10", "mrr", "seconds_mean"):
                    totals[key] = totals.get(key, 0.0) + report[key] * report["n"]
                n += report["n"]
        print(f"| {'BM25' if arm == 'off' else 'hybrid ' + arm} | "
              + " | ".join(f"{totals[k] / n:.3f}" for k in ("recall@1", "recall@5",
                                                             "recall@10", "mrr", "seconds_mean"))
              + " |")


def replay_part(corpora: Path, embedders: list[str]) -> None:
    """`peek eval --replay`'s learned arm, BM25 vs hybrid, later halves."""
    from peek.evals.replay import load_replay, replay, resolve_corpora

    rows = load_replay(EVAL / "replay-dev.jsonl")
    print(f"\n## Replay (learned arm, {len(rows)} rows, later halves)\n")
    print("| arm | corpus | n | recall@1 | recall@5 | recall@10 | MRR | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for arm in ["off", *embedders]:
        with dense(arm):
            start = time.perf_counter()
            report = replay(rows, resolve_corpora(rows, [corpora]), arms=("learned",))
            seconds = time.perf_counter() - start
        data = report["arms"]["learned"]
        label = "BM25" if arm == "off" else "hybrid " + arm
        for corpus, s in [*data["corpora"].items(), ("all", data["all"])]:
            print(f"| {label} | {corpus} | {s['n']} | {s['recall@1']:.3f} | {s['recall@5']:.3f} "
                  f"| {s['recall@10']:.3f} | {s['mrr']:.3f} | {seconds:.0f} |")


def cost(corpora: Path, embedders: list[str], work: Path) -> None:
    """Cold sympy index with dense off and on: seconds, chunks embedded per second, store size."""
    root = corpora / "sympy-1.14.0"
    print("\n## Cold index cost on sympy-1.14.0\n")
    print("| arm | index s | dense s | chunks | chunks/s embedded | store MB | re-index s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for arm in ["off", *embedders]:
        with dense(arm):
            peek = Peek(root, work / f"home-cost-{arm}")
            if arm != "off":
                from peek.retrieval.embedders import make_dense_embedder

                make_dense_embedder(arm)  # model load/distillation is a one-time cost, not index
            start = time.perf_counter()
            stats = peek.index()
            seconds = time.perf_counter() - start
            ds = peek.dense_stats
            again = time.perf_counter()
            peek.index()
            warm = time.perf_counter() - again
        size = peek.settings.db_path.stat().st_size + _wal(peek)
        rate = f"{ds.embedded / ds.embed_seconds:.0f}" if ds and ds.embed_seconds else "-"
        print(f"| {arm} | {seconds:.1f} | {ds.seconds if ds else 0:.1f} | {stats.chunks} | "
              f"{rate} | {size / 1e6:.0f} | {warm:.2f} |")


def _wal(peek: Peek) -> int:
    wal = peek.settings.db_path.with_name(peek.settings.db_path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpora", type=Path)
    parser.add_argument("--embedders", default="static")
    parser.add_argument("--parts", default="epbench,swebench,cost")
    parser.add_argument("--home", type=Path)
    args = parser.parse_args()
    embedders = [e for e in args.embedders.split(",") if e]
    parts = set(args.parts.split(","))
    work = args.home or Path(tempfile.mkdtemp(prefix="peek-dense-"))
    if "cost" in parts:
        cost(args.corpora, embedders, work)
    if "epbench" in parts:
        epbench(embedders, work)
    if "swebench" in parts:
        swebench(args.corpora, embedders, work / "swebench")
    if "replay" in parts:
        replay_part(args.corpora, embedders)


if __name__ == "__main__":
    main()
