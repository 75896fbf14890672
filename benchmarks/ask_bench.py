"""Offline `peek ask` latency on the sympy sdist, warm (in process, index built, graph cached).

Usage: python benchmarks/ask_bench.py [CORPUS_DIR] [--home DIR]
Short questions are typical user questions; long ones are the SWE-bench issue texts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peek.service import Peek

ROOT = Path(__file__).resolve().parents[2]
SHORT = [
    "where is the derivative of a product computed", "how does Matrix.det choose a method",
    "where are rational numbers compared", "what simplifies trigonometric expressions",
    "how is a string parsed by sympify", "where is the latex printer for integrals",
    "how does solve handle a linear system", "where is series expansion implemented",
    "where are assumptions like positive stored", "how does lambdify translate to numpy",
    "where is the gcd of polynomials computed", "what prints unicode pretty output",
]


def latencies(peek: Peek, questions: list[str], learn: bool) -> list[float]:
    """Milliseconds per ask after one warm-up ask (which loads the graph)."""
    peek.ask(questions[0], learn=False)
    out = []
    for q in questions:
        start = time.perf_counter()
        peek.ask(q, learn=learn)
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="?", type=Path, default=ROOT / "corpora" / "sympy-1.14.0")
    parser.add_argument("--home", type=Path)
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="peek-ask-"))
    peek = Peek(args.corpus, home)
    if not peek.indexed:
        peek.index()
    dev = [json.loads(line)["question"] for line in
           (ROOT / "shared" / "eval" / "swebench-dev.jsonl").read_text().splitlines()
           if args.corpus.name.replace("-", "==", 1) in line]
    rows = [("short questions, no learning", latencies(peek, SHORT, False)),
            ("short questions, learning", latencies(peek, SHORT, True))]
    if dev:
        rows.append(("SWE-bench issue texts, no learning", latencies(peek, dev, False)))
    env = {**os.environ, "PEEK_HOME": str(home)}
    cli = []
    for q in SHORT[:3]:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "peek.cli", "ask", str(args.corpus), q, "--json"],
                       env=env, check=True, capture_output=True)
        cli.append((time.perf_counter() - start) * 1000)
    rows.append(("CLI process, cold (whole command)", cli))
    print(f"corpus: {args.corpus.name}   target: warm p50 <= 300 ms")
    print(f"| {'measure':<36} | {'n':>3} | {'p50 ms':>8} | {'p95 ms':>8} |")
    for name, values in rows:
        p95 = sorted(values)[max(0, int(len(values) * 0.95) - 1)]
        print(f"| {name:<36} | {len(values):>3} | {statistics.median(values):>8.1f} | "
              f"{p95:>8.1f} |")


if __name__ == "__main__":
    main()
