"""Episodic-memory benchmark, run through the product (ingest and search as the CLI does them).

Run: .venv/bin/python benchmarks/memory_bench.py [--eval ../shared/eval] [--budget 2000]
       [--samples 10] [--sessions 100] [--only locomo,epbench,code,stable]

- LoCoMo: each conversation is written as a JSONL log into its own folder, indexed, ingested
  with `ingest_file` (the `peek memory ingest <corpus>` path) and queried with `memory_search`
  (k=10, the budget). Evidence recall@5/@10 and hit@10 of retrieved turns per QA category,
  episode routing accuracy (share of a question's evidence turns inside the routed episode),
  tokens per question (the search block, and `memory_block` = routed episode + entity summaries
  + turns). Floor: BM25 (SQLite FTS5 with peek's tokenizer and query terms) over all turns,
  the top 10 rendered the same way.
- EpBench-20: chapters ingested as documents; chapter recall@5 on the questions with gold
  chapters, from the distinct chapters of the ranked turns; abstention on those without.
- Code sessions: `record_code_session` latency over synthetic trajectories on a small git repo,
  then `invalidate` after a commit-free edit.
- Stability: the episode blocks' sha256 across two builds in separate stores and processes.
- Scale (`--only scale --scale-turns 20000`): the LoCoMo conversations ingested again and again
  (each pass under new turn and session ids) into one corpus until it holds that many turns;
  ingest throughput per stage, then cold `memory_search` and `memory_block` (a fresh process
  each, imports and the tokenizer loaded before the clock starts), median of 5 questions.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"
CATEGORIES = (1, 2, 3, 4, 5)


def locomo_turns(sample: dict[str, Any]) -> list[dict[str, Any]]:
    """A LoCoMo conversation as ingest turns (image captions kept as text)."""
    conv = sample["conversation"]
    keys = sorted((k for k in conv if re.fullmatch(r"session_\d+", k)),
                  key=lambda k: int(k.split("_")[1]))
    turns = []
    for key in keys:
        for t in conv[key]:
            text = t["text"] + (f" [shares an image: {t['blip_caption']}]"
                                if t.get("blip_caption") else "")
            turns.append({"id": t["dia_id"], "speaker": t["speaker"], "text": text,
                          "time": conv.get(f"{key}_date_time"), "session": key})
    return turns


def evidence(qa: dict[str, Any], ids: set[str]) -> set[str]:
    """Evidence ids split on ';' and spaces, unknown ids dropped (README §2)."""
    return {x for e in qa.get("evidence", []) for x in re.split(r"[;\s]+", e) if x} & ids


class Floor:
    """BM25 over all turns: SQLite FTS5 with peek's tokenizer, queried with peek's terms."""

    def __init__(self, docs: list[tuple[str, str]]) -> None:
        self.ids = [d[0] for d in docs]
        self.conn = sqlite3.connect(":memory:")
        self.conn.execute("CREATE VIRTUAL TABLE f USING fts5(body, tokenize = "
                          "\"porter unicode61 tokenchars '_'\")")
        self.conn.executemany("INSERT INTO f(rowid, body) VALUES (?, ?)",
                              [(i + 1, d[1]) for i, d in enumerate(docs)])

    def search(self, query: str, k: int) -> list[int]:
        from peek.retrieval.lexical import fts_query
        from peek.text import query_terms

        terms = query_terms(query)
        if not terms:
            return []
        rows = self.conn.execute("SELECT rowid FROM f WHERE f MATCH ? ORDER BY bm25(f) LIMIT ?",
                                 (fts_query(terms), k))
        return [r[0] - 1 for r in rows]


def open_corpus(folder: Path, home: Path) -> Any:
    """An indexed corpus for a folder (conversation-only material: index the folder)."""
    from peek.service import Peek

    peek = Peek(folder, home)
    peek.index()
    return peek


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


# --- LoCoMo --------------------------------------------------------------------------------


def run_locomo(path: Path, work: Path, budget: int, samples: int) -> dict[str, Any]:
    """Per-category recall of memory search vs the BM25 floor, routing and tokens."""
    from peek.memory.ingest import ingest_file
    from peek.memory.query import centroid_episode, memory_block, memory_search, routed_episode
    from peek.memory.search import memory_index
    from peek.tokens import count_tokens

    data = json.loads(path.read_text())[:samples]
    stats: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    ingest_s = 0.0
    for n, sample in enumerate(data):
        folder = work / f"locomo-{n}"
        folder.mkdir(parents=True)
        turns = locomo_turns(sample)
        log = folder / "conversation.jsonl"
        log.write_text("\n".join(json.dumps(t) for t in turns) + "\n")
        peek = open_corpus(folder, work / "home-locomo")
        started = time.perf_counter()
        ingest_file(peek.db, peek.corpus_id, log)
        ingest_s += time.perf_counter() - started
        ids = [t["id"] for t in turns]
        lines = {t["id"]: _line(t) for t in turns}
        floor = Floor([(t["id"], f"{t['speaker']}: {t['text']}") for t in turns])
        with peek.db.query() as conn:
            index = memory_index(conn, peek.db.path, peek.corpus_id)
            assert index is not None
            episode_of = dict(zip((t.turn_id for t in index.turns), index.episode_of,
                                  strict=True))
        for qa in sample["qa"]:
            gold = evidence(qa, set(ids))
            if not gold:
                continue
            cat, q = int(qa["category"]), qa["question"]
            found = memory_search(peek.db, peek.corpus_id, q, k=10, budget=budget)
            got = [t for r in found.results for t in r.turn_ids]
            base = [ids[i] for i in floor.search(q, 10)]
            _score(stats, "mem", cat, gold, got)
            _score(stats, "bm25", cat, gold, base)
            with peek.db.query() as conn:
                index = memory_index(conn, peek.db.path, peek.corpus_id)
                assert index is not None
                routed = routed_episode(index, q)
                nearest = centroid_episode(index, q)
            stats["route"][cat].append(mean([float(episode_of.get(g) == routed) for g in gold]))
            stats["route_c"][cat].append(mean([float(episode_of.get(g) == nearest) for g in gold]))
            stats["tok_search"][cat].append(found.tokens)
            stats["tok_block"][cat].append(count_tokens(
                memory_block(peek.db, peek.corpus_id, q, budget)))
            stats["tok_bm25"][cat].append(count_tokens("\n".join(lines[i] for i in base)))
        peek.close()
    return {"stats": stats, "ingest_s": ingest_s, "samples": len(data)}


def _line(turn: dict[str, Any]) -> str:
    return f"[{turn['id']}] ({turn['time']}) {turn['speaker']}: {turn['text']}"


def _score(stats: dict[str, dict[int, list[float]]], name: str, cat: int, gold: set[str],
           ranked: list[str]) -> None:
    stats[f"{name}_r5"][cat].append(len(gold & set(ranked[:5])) / len(gold))
    stats[f"{name}_r10"][cat].append(len(gold & set(ranked[:10])) / len(gold))
    stats[f"{name}_hit10"][cat].append(float(bool(gold & set(ranked[:10]))))


def print_locomo(result: dict[str, Any], budget: int) -> None:
    s = result["stats"]
    print(f"\n## LoCoMo ({result['samples']} conversations; ingest {result['ingest_s']:.1f} s; "
          f"budget {budget} tokens)\n")
    print("| category | n | mem R@5 | mem R@10 | mem hit@10 | BM25 R@5 | BM25 R@10 | BM25 hit@10 "
          "| routing | routing (centroid) | tokens search | tokens block | tokens BM25 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    groups = [(str(c), [c]) for c in CATEGORIES] + [("1-4", [1, 2, 3, 4])]
    for label, cats in groups:
        def avg(key: str, cats: list[int] = cats) -> float:
            return mean([v for c in cats for v in s[key][c]])
        n = sum(len(s["mem_r10"][c]) for c in cats)
        print(f"| {label} | {n} | {avg('mem_r5'):.3f} | {avg('mem_r10'):.3f} | "
              f"{avg('mem_hit10'):.3f} | {avg('bm25_r5'):.3f} | {avg('bm25_r10'):.3f} | "
              f"{avg('bm25_hit10'):.3f} | {avg('route'):.3f} | {avg('route_c'):.3f} | "
              f"{avg('tok_search'):.0f} | "
              f"{avg('tok_block'):.0f} | {avg('tok_bm25'):.0f} |")
    gain = mean([v for c in (1, 2, 3, 4) for v in s["mem_r10"][c]]) - mean(
        [v for c in (1, 2, 3, 4) for v in s["bm25_r10"][c]])
    print(f"\nrecall@10 gain over the BM25 floor (categories 1-4): {gain:+.3f} (goal ≥ +0.10)")


# --- EpBench ---------------------------------------------------------------------------------


def run_epbench(folder: Path, work: Path, budget: int) -> dict[str, Any]:
    """Chapter recall@5 (gold questions) and abstention (no-gold questions)."""
    from peek.memory.ingest import ingest_documents
    from peek.memory.query import memory_search

    book = json.loads((folder / "book_20.json").read_text())
    questions = json.loads((folder / "questions_20.json").read_text())
    corpus = work / "epbench"
    corpus.mkdir()
    (corpus / "book.json").write_text(json.dumps(book))
    peek = open_corpus(corpus, work / "home-epbench")
    ingest_documents(peek.db, peek.corpus_id, [{"id": k, "text": v} for k, v in book.items()])
    paragraphs = [(f"{k}:{i}", p) for k, v in book.items()
                  for i, p in enumerate((x for x in re.split(r"\n\s*\n", v) if x.strip()), 1)]
    floor = Floor(paragraphs)
    out: dict[str, list[float]] = defaultdict(list)
    for q in questions:
        gold = set(q["correct_answer_chapters"])
        found = memory_search(peek.db, peek.corpus_id, q["question"], k=20, budget=budget)
        chapters = _chapters([t for r in found.results for t in r.turn_ids])
        base = _chapters([paragraphs[i][0] for i in floor.search(q["question"], 20)])
        if gold:
            out["r5"].append(len(gold & set(chapters[:5])) / len(gold))
            out["bm25_r5"].append(len(gold & set(base[:5])) / len(gold))
            out["false_abstain"].append(float(found.abstained))
            out["tokens"].append(found.tokens)
        else:
            out["abstain"].append(float(found.abstained))
    peek.close()
    return out


def _chapters(turn_ids: list[str]) -> list[int]:
    seen: dict[int, None] = {}
    for tid in turn_ids:
        m = re.match(r"Chapter (\d+):", tid)
        if m:
            seen.setdefault(int(m.group(1)), None)
    return list(seen)


def print_epbench(out: dict[str, list[float]]) -> None:
    print("\n## EpBench-20\n")
    print("| questions | metric | memory | BM25 floor |")
    print("|---|---|---|---|")
    print(f"| {len(out['r5'])} with gold chapters | chapter recall@5 | {mean(out['r5']):.3f} | "
          f"{mean(out['bm25_r5']):.3f} |")
    print(f"| {len(out['r5'])} with gold chapters | abstained (wrongly) | "
          f"{mean(out['false_abstain']):.3f} | 0 |")
    print(f"| {len(out['abstain'])} without gold | abstained | {mean(out['abstain']):.3f} | 0 |")
    print(f"\nmean search-block tokens (gold questions): {mean(out['tokens']):.0f}")


# --- code sessions ---------------------------------------------------------------------------


def run_code(work: Path, sessions: int) -> dict[str, float]:
    """record_code_session latency on a small git repository, then invalidation."""
    from peek.memory.invalidation import invalidate
    from peek.memory.sessions import record_code_session

    root = work / "repo"
    _write_repo(root)
    peek = open_corpus(root, work / "home-code")
    paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.py"))
    times = []
    for i in range(sessions):
        traj = _trajectory(i, paths)
        started = time.perf_counter()
        record_code_session(peek.db, peek.corpus_id, peek.root, traj, f"bench-{i}")
        times.append((time.perf_counter() - started) * 1000)
    (root / paths[0]).write_text("def changed():\n    return 1\n")
    started = time.perf_counter()
    stale = invalidate(peek.db, peek.corpus_id, peek.root)
    inval_ms = (time.perf_counter() - started) * 1000
    peek.close()
    return {"p50": statistics.median(times[1:]), "p95": _p95(times[1:]), "first": times[0],
            "stale": stale, "invalidate_ms": inval_ms, "sessions": sessions}


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def _write_repo(root: Path) -> None:
    for i in range(20):
        path = root / "pkg" / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'"""Module {i}."""\nSETTING_{i} = {i}\n\n\nclass Worker{i}:\n'
                        f"    def run(self, value):\n        return value + {i}\n")
    git = ["git", "-c", "user.email=bench@peek", "-c", "user.name=bench"]
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=root, check=True)


def _trajectory(i: int, paths: list[str]) -> dict[str, Any]:
    cited = paths[i % len(paths)]
    return {"question": f"Where does Worker{i % 20} read SETTING_{i % 20}?",
            "steps": [{"tool": "search", "args": {"query": f"Worker{i % 20}"}, "paths": [cited],
                       "ok": True},
                      {"tool": "read", "args": {"path": cited}, "paths": [cited], "ok": True}],
            "answer": f"{cited} defines Worker{i % 20}.run", "outcome": {"edited_files": []},
            "citations": [{"path": cited, "start_line": 5, "end_line": 7}]}


# --- stability -------------------------------------------------------------------------------


def episode_shas(locomo: Path, work: Path) -> list[str]:
    """Build the first LoCoMo conversation's memory in a fresh store; its blocks' sha256."""
    from peek.memory.ingest import ingest_file
    from peek.memory.query import list_episodes

    folder = work / "stable"
    folder.mkdir(parents=True)
    log = folder / "conversation.jsonl"
    turns = locomo_turns(json.loads(locomo.read_text())[0])
    log.write_text("\n".join(json.dumps(t) for t in turns) + "\n")
    peek = open_corpus(folder, work / "home-stable")
    ingest_file(peek.db, peek.corpus_id, log)
    shas = [e["prefix_sha256"] for e in list_episodes(peek.db, peek.corpus_id)]
    peek.close()
    return shas


def run_stable(locomo: Path) -> dict[str, Any]:
    """Two builds: this process and a fresh one; the same shas mean byte-identical blocks."""
    with tempfile.TemporaryDirectory() as tmp:
        here = episode_shas(locomo, Path(tmp))
    done = subprocess.run([sys.executable, __file__, "--eval", str(locomo.parent),
                           "--shas-only"], capture_output=True, text=True, check=True)
    there = json.loads(done.stdout.strip().splitlines()[-1])
    return {"episodes": len(here), "identical": here == there, "shas": here}


# --- scale ------------------------------------------------------------------------------------

COLD_QUESTIONS = ["What did Caroline research?", "When did Melanie paint a sunrise?",
                  "What is Jon's favorite dance style?", "Where did Gina go on vacation?",
                  "What books has Melanie read?"]
_COLD = """
import json, sys, time
from peek.service import Peek
from peek.memory.query import memory_block, memory_search
from peek.tokens import count_tokens
count_tokens("warm the tokenizer")
peek = Peek(sys.argv[1], sys.argv[2])
cid = peek.corpus_id
fn, q = sys.argv[3], sys.argv[4]
started = time.perf_counter()
if fn == "search":
    memory_search(peek.db, cid, q, 10, 2000)
else:
    memory_block(peek.db, cid, q, 2000)
print(json.dumps({"ms": (time.perf_counter() - started) * 1000}))
"""


def run_scale(path: Path, work: Path, target: int) -> dict[str, Any]:
    """Ingest LoCoMo again and again up to `target` turns; throughput, then cold serving."""
    from peek.memory.ingest import ingest_turns

    data = json.loads(path.read_text())
    folder = work / "scale"
    folder.mkdir(parents=True)
    (folder / "README.md").write_text("memory at scale\n")
    home = work / "home-scale"
    peek = open_corpus(folder, home)
    stages: list[tuple[int, float]] = []
    cpu_stages: list[tuple[int, float]] = []  # CPU seconds: steadier on a shared machine
    total, n = 0, 0
    while total < target:
        sample, lap = data[n % len(data)], n // len(data)
        turns = [{**t, "id": f"L{lap}C{n % len(data)}:{t['id']}",
                  "session": f"L{lap}C{n % len(data)}:{t['session']}"}
                 for t in locomo_turns(sample)][: target - total]
        started, cpu = time.perf_counter(), time.process_time()
        ingest_turns(peek.db, peek.corpus_id, turns)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        total += len(turns)
        stages.append((total, elapsed / len(turns) * 1000))
        cpu_stages.append((total, cpu / len(turns) * 1000))
        print(f"  {total:>6} turns: {elapsed / len(turns) * 1000:.2f} s per 1,000 turns "
              f"({cpu / len(turns) * 1000:.2f} CPU s)", flush=True)
        n += 1
    peek.close()
    cold = {fn: [_cold(folder, home, fn, q) for q in COLD_QUESTIONS]
            for fn in ("search", "block")}
    return {"stages": stages, "cpu_stages": cpu_stages, "cold": cold, "turns": total}


def _cold(folder: Path, home: Path, fn: str, question: str) -> float:
    done = subprocess.run([sys.executable, "-c", _COLD, str(folder), str(home), fn, question],
                          capture_output=True, text=True, check=True)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["ms"])


def _amortized(stages: list[tuple[int, float]], start: int, stop: int | None) -> float:
    """Seconds per 1,000 turns over the batches from the one ending after `start` until the
    first that reaches `stop`."""
    seconds, count, before = 0.0, 0, 0
    for total, per in stages:
        n = total - before
        if total > start:
            seconds += per * n / 1000
            count += n
        before = total
        if stop is not None and total >= stop:
            break
    return seconds / count * 1000 if count else float("nan")


def print_scale(result: dict[str, Any]) -> None:
    stages, cpu = result["stages"], result["cpu_stages"]
    first = next(s for t, s in stages if t >= 1000) if stages[-1][0] >= 1000 else stages[0][1]
    last = stages[-1][1]
    print(f"\n## Memory at scale ({result['turns']} turns)\n")
    print("| turns stored after the batch | s per 1,000 turns | × the rate at 1,000 "
          "| CPU s per 1,000 turns |")
    print("|---|---|---|---|")
    for (total, per), (_, per_cpu) in zip(stages, cpu, strict=True):
        print(f"| {total} | {per:.2f} | {per / first:.2f} | {per_cpu:.2f} |")
    print(f"\nlast batch vs the batch that reached 1,000 turns: {last / first:.2f}×")
    for name, rows in (("wall", stages), ("CPU", cpu)):
        early, late = _amortized(rows, 0, 1000), _amortized(rows, rows[-1][0] - 5000, None)
        print(f"amortized {name} time (refits and re-clusterings included): {early:.2f} s per "
              f"1,000 turns over the first ≥1,000 turns, {late:.2f} over the last ≥5,000: "
              f"{late / early:.2f}× (goal ≤ 1.5)")
    for fn, values in result["cold"].items():
        print(f"cold memory_{fn}: median {statistics.median(values):.0f} ms, max "
              f"{max(values):.0f} ms over {len(values)} questions, each in a fresh process "
              "(goal ≤ 100 ms)")


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, default=EVAL)
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--only", default="locomo,epbench,code,stable")
    parser.add_argument("--shas-only", action="store_true")
    parser.add_argument("--scale-turns", type=int, default=20000)
    args = parser.parse_args()
    locomo = args.eval / "locomo10.json"
    if args.shas_only:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(episode_shas(locomo, Path(tmp))))
        return
    from peek.memory.embed import active_embedder_name

    print(f"# memory benchmark (embedder: {active_embedder_name()})")
    parts = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="peek-memory-bench-"))
    try:
        _run(parts, args, locomo, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(parts: set[str], args: argparse.Namespace, locomo: Path, work: Path) -> None:
    started = time.perf_counter()
    if "locomo" in parts:
        print_locomo(run_locomo(locomo, work, args.budget, args.samples), args.budget)
    if "epbench" in parts:
        print_epbench(run_epbench(args.eval / "epbench20", work, args.budget))
    if "code" in parts:
        c = run_code(work, args.sessions)
        print(f"\n## Code sessions\n\nrecord_code_session over {c['sessions']} sessions: "
              f"p50 {c['p50']:.1f} ms, p95 {c['p95']:.1f} ms, first (imports) {c['first']:.0f} "
              f"ms (goal p50 ≤ 100 ms); invalidate after one edit: {c['stale']} items stale in "
              f"{c['invalidate_ms']:.1f} ms")
    if "scale" in parts:
        print_scale(run_scale(locomo, work, args.scale_turns))
    if "stable" in parts:
        s = run_stable(locomo)
        print(f"\n## Byte stability\n\n{s['episodes']} episode blocks, sha256 identical across "
              f"two builds in two processes: {s['identical']}")
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
