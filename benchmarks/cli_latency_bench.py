"""Whole-process latency of the `peek` commands people type, against a bare `python -c pass`.

Usage: python benchmarks/cli_latency_bench.py [CORPUS_DIR] [--runs N]
Default corpus: the sympy sdist (../peek-corpora/sympy-1.14.0 or ../corpora/sympy-1.14.0).
The corpus is indexed once into a temporary PEEK_HOME (that cold index is reported too), then
every command runs N times (default 7) as a fresh process; the table shows the median, the
fastest run, the median as a multiple of `python -c pass` measured in the same run (so a
busy machine shows up in the baseline as well) and the median CPU seconds (user + system),
which load inflates far less. Numbers on a shared machine are upper bounds. The commands run
with bytecode caching on (PYTHONDONTWRITEBYTECODE is dropped from their environment), as for
any installed package: otherwise every run compiles peek from source.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
CANDIDATES = [HERE.parents[2] / "peek-corpora" / "sympy-1.14.0",
              HERE.parents[2] / "corpora" / "sympy-1.14.0"]
QUESTION = "where is the risch algorithm for integrating elementary functions"
QUERY = "integrate rational function"
EDITED = "sympy/integrals/risch.py"


def peek_command() -> list[str]:
    """The installed `peek` script next to this interpreter, else `python -m peek.cli`."""
    script = Path(sys.executable).with_name("peek")
    return [str(script)] if script.exists() else [sys.executable, "-m", "peek.cli"]


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one process (CPU: user + system, which a busy machine inflates far
    less than wall); a failing command stops the benchmark with its stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({out.returncode}): {out.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def cases(root: Path, session: str) -> list[tuple[str, list[str], float | None]]:
    """(label, argv, target seconds) in the order they are measured; `record` and
    `record --retract` of one asked session alternate, so each run does both for real."""
    peek = peek_command()
    r = str(root)
    return [
        ("python -c pass", [sys.executable, "-c", "pass"], None),
        ("peek --help", [*peek, "--help"], 0.2),
        ("peek search", [*peek, "search", r, QUERY], 0.35),
        ("peek status", [*peek, "status", r], 0.35),
        ("peek index (no change)", [*peek, "index", r], 0.4),
        ("peek ask (offline)", [*peek, "ask", r, QUESTION], 0.6),
        ("peek record", [*peek, "record", r, "--session", session, "--edited", EDITED,
                         "--success"], 0.8),
        ("peek record --retract", [*peek, "record", r, "--session", session, "--retract"],
         0.7),
    ]


def asked_session(root: Path, env: dict[str, str]) -> str:
    """A stored session to record an outcome for."""
    out = subprocess.run([*peek_command(), "ask", str(root), QUESTION, "--json"], env=env,
                         capture_output=True, text=True, check=True)
    return str(json.loads(out.stdout)["session"])


def measure(rows: list[tuple[str, list[str], float | None]], env: dict[str, str],
            runs: int) -> dict[str, list[tuple[float, float]]]:
    """Interleave the commands run by run, so load spikes hit them all alike."""
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _ in rows}
    for _label, argv, _ in rows:  # one warm-up each: file cache, .pyc, the tokenizer cache
        timed(argv, env)
    for _ in range(runs):
        for label, argv, _ in rows:
            samples[label].append(timed(argv, env))
    return samples


def print_table(corpus: str, cold: float, rows: list[tuple[str, list[str], float | None]],
                samples: dict[str, list[tuple[float, float]]], runs: int) -> None:
    base = statistics.median(w for w, _ in samples["python -c pass"])
    print(f"corpus: {corpus}   cores: {os.cpu_count()}   runs per command: {runs}   "
          f"load avg: {os.getloadavg()[0]:.2f}")
    print(f"cold index (whole process): {cold:.2f} s")
    print(f"| {'command':<24} | {'median s':>8} | {'min s':>6} | {'x pass':>6} | "
          f"{'cpu s':>6} | {'target':>6} | ok")
    print(f"|{'-' * 26}|{'-' * 10}|{'-' * 8}|{'-' * 8}|{'-' * 8}|{'-' * 8}|----")
    for label, _, target in rows:
        walls = [w for w, _ in samples[label]]
        med, low = statistics.median(walls), min(walls)
        cpu = statistics.median(c for _, c in samples[label])
        ok = "" if target is None else ("yes" if med <= target else "NO")
        tgt = "" if target is None else f"{target:.2f}"
        print(f"| {label:<24} | {med:>8.3f} | {low:>6.3f} | {med / base:>6.1f} | {cpu:>6.3f} | "
              f"{tgt:>6} | {ok}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    source = args.corpus or next((c for c in CANDIDATES if c.is_dir()), CANDIDATES[0])
    if not source.is_dir():
        sys.exit(f"corpus not found: {source}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / source.name
        shutil.copytree(source, root)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PEEK_HOME"] = str(Path(tmp) / "home")
        cold, _ = timed([*peek_command(), "index", str(root)], env)
        rows = cases(root, asked_session(root, env))
        samples = measure(rows, env, max(args.runs, 5))
        print_table(source.name, cold, rows, samples, max(args.runs, 5))


if __name__ == "__main__":
    main()
