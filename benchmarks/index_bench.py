"""Index and search speed on a real corpus (default: the sympy sdist of shared/eval/corpora.json).

Usage: python benchmarks/index_bench.py [CORPUS_DIR]
Download the corpus with the command in ../shared/eval/README.md ("Materializing the corpora").

Peak memory is the largest resident set of any one process of the cold index (the peek
process or one of its parse workers), read with getrusage(RUSAGE_CHILDREN) by a small wrapper
process that runs only that index; the peak of the main peek process alone is printed too,
read from /proc/self/status (VmHWM) by peek's `PEEK_REPORT_RSS` hook. On Linux the wrapper is a
child subreaper, so parse workers that are children of multiprocessing's forkserver (which the
peek process never waits for) are reaped by it too: its RUSAGE_CHILDREN then covers the whole tree,
and the table also gives the cold index's CPU seconds (user + system, every process), which a
busy machine inflates far less than wall time.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
DEFAULT = next((p for p in (_ROOT / "peek-corpora" / "sympy-1.14.0",
                            _ROOT / "corpora" / "sympy-1.14.0") if p.is_dir()),
               _ROOT / "corpora" / "sympy-1.14.0")
_RSS_WRAPPER = """
import ctypes, os, resource, subprocess, sys
try:  # PR_SET_CHILD_SUBREAPER: orphaned workers come to us, so their usage is counted
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)
except (OSError, AttributeError):
    pass
r = subprocess.run(sys.argv[1:])
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print('maxrss_kb', u.ru_maxrss, 'cpu_s', u.ru_utime + u.ru_stime, file=sys.stderr)
sys.exit(r.returncode)
"""
QUERIES = [
    "where are redirects followed", "simplify trigonometric expression", "Matrix determinant",
    "solve linear system", "latex printing of integrals", "series expansion at infinity",
    "sympify string parsing", "Rational comparison", "lambdify numpy", "polynomial gcd",
    "assumptions positive symbol", "pretty printer unicode", "limit of sequence",
    "derivative of piecewise", "integrate rational function", "factor polynomial over field",
]
PEEK = [sys.executable, "-m", "peek.cli"]


def run(*args: str, env: dict[str, str]) -> tuple[float, dict[str, object] | None]:
    """Wall time of one `peek` command in a fresh process, and its JSON output if any."""
    start = time.perf_counter()
    out = subprocess.run([*PEEK, *args], capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - start
    return wall, json.loads(out.stdout) if out.stdout.startswith("{") else None


def run_measured(*args: str, env: dict[str, str]
                 ) -> tuple[float, dict[str, object], int, int, float]:
    """Like `run`, plus the peak RSS (KB) of the largest process and of the peek process, and
    the CPU seconds of every process of the run."""
    argv = [sys.executable, "-c", _RSS_WRAPPER, *PEEK, *args]
    start = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, check=True,
                         env={**env, "PEEK_REPORT_RSS": "1"})
    wall = time.perf_counter() - start
    largest = int(out.stderr.rsplit("maxrss_kb", 1)[1].split()[0])
    main_kb = int(out.stderr.rsplit("peek_vmhwm_kb", 1)[1].split()[0])
    cpu = float(out.stderr.rsplit("cpu_s", 1)[1].split()[0])
    return wall, json.loads(out.stdout), largest, main_kb, cpu


def search_latencies(root: Path, home: Path) -> list[float]:
    """In-process search latencies (ms) over QUERIES, repeated, after one warm-up pass."""
    from peek.service import Peek

    peek = Peek(root, home)
    for q in QUERIES:
        peek.search(q, 10)
    samples = []
    for _ in range(5):
        for q in QUERIES:
            start = time.perf_counter()
            peek.search(q, 10)
            samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not source.is_dir():
        sys.exit(f"corpus not found: {source} (see shared/eval/README.md to download it)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / source.name
        shutil.copytree(source, root)
        home = Path(tmp) / "home"
        env = {**os.environ, "PEEK_HOME": str(home)}
        rows = []
        wall, cold, largest, main_kb, cpu = run_measured("index", str(root), "--json", env=env)
        note = (f"{cold['files']} files, {cold['chunks']} chunks; {cpu:.1f} CPU s in all "
                f"processes; load avg {os.getloadavg()[0]:.1f}")
        rows.append(("cold index", wall, 15.0, note))
        note = f"largest process {largest / 1e3:.0f} MB; peek process {main_kb / 1e3:.0f} MB"
        rows.append(("cold index peak RSS (GB)", largest / 1e6, 0.3, note))
        wall, same = run("index", str(root), "--json", env=env)
        rows.append(("no-change re-index", same["seconds"], 0.5, f"process wall {wall:.2f}s"))
        target = next(p for p in sorted(root.rglob("*.py")) if p.stat().st_size > 20_000)
        target.write_text(target.read_text() + "\n\ndef peek_bench_added():\n    return 1\n")
        wall, edit = run("index", str(root), "--json", env=env)
        note = f"changed={edit['changed']}, process wall {wall:.2f}s"
        rows.append(("re-index after 1 edit", edit["seconds"], 1.0, note))
        lat = search_latencies(root, home)
        p50, p95 = statistics.median(lat), statistics.quantiles(lat, n=20)[18]
        rows.append(("search p50 (in process)", p50 / 1000, 0.1, f"p95 {p95:.1f} ms, n={len(lat)}"))
        helps = [run("--help", env=env)[0] for _ in range(5)]
        rows.append(("peek --help", statistics.median(helps), 0.25, "median of 5 processes"))
        print_table(source.name, rows)


def print_table(corpus: str, rows: list[tuple[str, float, float, str]]) -> None:
    print(f"corpus: {corpus}   cores: {os.cpu_count()}")
    print(f"| {'measure':<26} | {'seconds':>8} | {'target':>7} | {'ok':<3} | notes")
    print(f"|{'-' * 28}|{'-' * 10}|{'-' * 9}|{'-' * 5}|------")
    for name, value, target, note in rows:
        ok = "yes" if value <= target else "NO"
        print(f"| {name:<26} | {value:>8.3f} | {target:>7.3f} | {ok:<3} | {note}")


if __name__ == "__main__":
    main()
