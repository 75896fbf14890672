"""PostgreSQL against SQLite (issue 14): same answers, load, crashes, latency. Prints tables.

Usage (URL: an empty PostgreSQL database, e.g. postgresql+psycopg://peek@/bench?host=/tmp/pg):
  python benchmarks/postgres_bench.py same CORPORA_DIR --url URL [--only sympy-1.14.0,...]
      offline recall@5 / MRR on shared/eval/swebench-dev.jsonl, both backends (target: |d| <= 0.02)
  python benchmarks/postgres_bench.py learned CORPORA_DIR --url URL [--only flask-3.1.3] [--rows N]
      replay-dev.jsonl's learned arm on both backends: later-half recall@5 (target: |d| <= 0.02)
  python benchmarks/postgres_bench.py load CORPUS --url URL [--seconds 120] [--procs 8]
      4 `peek mcp` servers + 4 CLI loops asking, recording, re-indexing one corpus, per backend:
      ops/s, client errors, recorded sessions missing from the map history, map within budget
  python benchmarks/postgres_bench.py crash CORPUS --url URL [--runs 20]
      kill -9 an indexer and a recorder mid-write; then the next command, locks, integrity
  python benchmarks/postgres_bench.py latency CORPUS --url URL [--calls 200] [--home DIR]
      warm search p50 (target <= 30 ms) and peek_map p50 (target <= 10 ms) on PostgreSQL
  python benchmarks/postgres_bench.py stemmers CORPORA_DIR [--only flask-3.1.3,...]
      pg_lexical's Porter stemmer against SQLite FTS5's on every word of each corpus
Timings on a shared machine are upper bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PEEK = str(Path(sys.executable).with_name("peek"))
DATA = Path(__file__).resolve().parents[2] / "shared" / "eval" / "swebench-dev.jsonl"
REPLAY = DATA.with_name("replay-dev.jsonl")


def _peek(corpus: Path, home: Path, url: str | None) -> Any:
    """A service on SQLite (url None: the home's file) or on the PostgreSQL URL."""
    from peek.service import Peek

    if url:
        os.environ["PEEK_DATABASE_URL"] = url
    else:
        os.environ.pop("PEEK_DATABASE_URL", None)
    return Peek(corpus, home)


def _env(url: str | None, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PEEK_DATABASE_URL"}
    env["PEEK_HOME"] = str(home)
    if url:
        env["PEEK_DATABASE_URL"] = url
    return env


# --- same answers ------------------------------------------------------------------------------

def same(args: argparse.Namespace) -> None:
    """Offline recall@5 and MRR per corpus on both backends."""
    from peek.agent.session import Budgets
    from peek.evals.evaluate import GoldQuestion as Question
    from peek.evals.evaluate import ask_all, summarize

    groups: dict[str, list[Question]] = {}
    for line in DATA.read_text().splitlines():
        raw = json.loads(line)
        groups.setdefault(raw["pypi"].replace("==", "-"), []).append(
            Question(raw["id"], raw["question"], tuple(raw["gold_files"])))
    only = set(args.only.split(",")) if args.only else set(groups)
    home = Path(tempfile.mkdtemp(prefix="peek-pgbench-"))
    rows, scored = [], {"sqlite": [], "postgresql": []}
    for name in sorted(only & set(groups)):
        result = {}
        for backend, url in (("sqlite", None), ("postgresql", args.url)):
            peek = _peek(args.corpora / name, home, url)
            started = time.perf_counter()
            peek.index()
            took = time.perf_counter() - started
            done = ask_all(peek, groups[name], None, Budgets(), learn=False)
            scored[backend].extend(done)
            result[backend] = (summarize(done), took)
            peek.close()
        (lite, ti), (pg, tp) = result["sqlite"], result["postgresql"]
        rows.append((name, lite["n"], lite["recall@5"], pg["recall@5"], lite["mrr"], pg["mrr"],
                     f"{ti:.0f}/{tp:.0f}"))
    lite, pg = summarize(scored["sqlite"]), summarize(scored["postgresql"])
    rows.append(("ALL (micro)", lite["n"], lite["recall@5"], pg["recall@5"], lite["mrr"],
                 pg["mrr"], ""))
    print("| corpus | n | r@5 sqlite | r@5 pg | d | mrr sqlite | mrr pg | d | index s (lite/pg) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, n, r_l, r_p, m_l, m_p, t in rows:
        print(f"| {name} | {n} | {r_l:.4f} | {r_p:.4f} | {r_p - r_l:+.4f} | {m_l:.4f} | "
              f"{m_p:.4f} | {m_p - m_l:+.4f} | {t} |")


def learned(args: argparse.Namespace) -> None:
    """The replay's learned arm (ask, score, record the edits, in history order) per backend:
    recall@5 and MRR on the later half of each corpus's rows."""
    from peek.agent.session import Budgets
    from peek.evals.evaluate import summarize
    from peek.evals.replay import _run_arm, load_replay

    rows = load_replay(REPLAY)
    names = args.only.split(",") if args.only else sorted({r.corpus for r in rows})
    print("| corpus | rows | later-half r@5 sqlite | r@5 pg | d | mrr sqlite | mrr pg | d |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        items = [r for r in rows if r.corpus == name][: args.rows]
        got = {}
        for backend, url in (("sqlite", None), ("postgresql", args.url)):
            peek = _peek(args.corpora / name, Path(tempfile.mkdtemp(prefix="peek-learn-")), url)
            peek.index()
            done = _run_arm(peek, "learned", items, Budgets(), {"ask": [], "record": []}, None)
            got[backend] = summarize(done[len(done) // 2:])
            peek.close()
        lite, pg = got["sqlite"], got["postgresql"]
        print(f"| {name} | {len(items)} | {lite['recall@5']:.4f} | {pg['recall@5']:.4f} | "
              f"{pg['recall@5'] - lite['recall@5']:+.4f} | {lite['mrr']:.4f} | {pg['mrr']:.4f} | "
              f"{pg['mrr'] - lite['mrr']:+.4f} |")


# --- load --------------------------------------------------------------------------------------

async def _mcp_client(i: int, corpus: Path, env: dict[str, str], deadline: float,
                      tally: dict[str, Any]) -> None:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, env=env,
                                   args=["-m", "peek.cli", "mcp", "--root", str(corpus)])
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        n = 0
        while time.monotonic() < deadline:
            n += 1
            files = _files(corpus, i + n)
            calls = [("peek_record", {"corpus": str(corpus), "question": f"mcp{i} q{n}",
                                      "files_read": files, "files_edited": files[:1],
                                      "success": n % 2 == 0}),
                     ("peek_search", {"corpus": str(corpus), "query": f"request {files[0]}"}),
                     ("peek_map", {"corpus": str(corpus)})]
            if n % 4 == 0:
                _touch(corpus, f"mcp{i}", n)
                calls.append(("peek_index", {"corpus": str(corpus)}))
            for name, arguments in calls:
                result = await session.call_tool(name, arguments)
                tally["ops"] += 1
                if result.is_error or result.structured_content is None:
                    tally["errors"].append(f"{name}: {str(result.content)[:200]}")
                elif name == "peek_record":
                    tally["sessions"].append(str(result.structured_content.get("session")))


async def _cli_client(i: int, corpus: Path, env: dict[str, str], deadline: float,
                      tally: dict[str, Any]) -> None:
    n = 0
    while time.monotonic() < deadline:
        n += 1
        asked = await _run(env, "ask", str(corpus), f"where is {_files(corpus, n)[0]} used",
                           "--json")
        if asked is None:
            tally["errors"].append(f"cli{i} ask failed")
            continue
        tally["ops"] += 1
        edited = _files(corpus, n + i)[0]
        done = await _run(env, "record", str(corpus), "--session", asked["session"], "--edited",
                          edited, "--success", "--json")
        tally["ops"] += 1
        if done is None:
            tally["errors"].append(f"cli{i} record failed")
        else:
            tally["sessions"].append(asked["session"])
        if n % 3 == 0:
            _touch(corpus, f"cli{i}", n)
            if await _run(env, "index", str(corpus), "--json") is None:
                tally["errors"].append(f"cli{i} index failed")
            tally["ops"] += 1


async def _run(env: dict[str, str], *args: str) -> dict[str, Any] | None:
    proc = await asyncio.create_subprocess_exec(PEEK, *args, env=env,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        sys.stderr.write(f"peek {args[0]}: {err.decode().strip()[:300]}\n")
        return None
    return dict(json.loads(out))


_SOURCES: list[str] = []


def _files(corpus: Path, n: int) -> list[str]:
    if not _SOURCES:
        _SOURCES.extend(sorted(str(p.relative_to(corpus)) for p in corpus.rglob("*.py"))[:40])
    return [_SOURCES[n % len(_SOURCES)], _SOURCES[(n * 7 + 3) % len(_SOURCES)]]


def _touch(corpus: Path, client: str, n: int) -> None:
    note = corpus / "notes" / f"{client}.md"
    note.parent.mkdir(exist_ok=True)
    with note.open("a", encoding="utf-8") as fh:
        fh.write(f"# {client} change {n}\n\nTouched by the {client} client.\n")


async def _everyone(corpus: Path, env: dict[str, str], deadline: float, tally: dict[str, Any],
                    procs: int) -> None:
    """Half the processes are MCP servers (with their clients), half CLI loops."""
    half = procs // 2
    await asyncio.gather(
        *(_mcp_client(i, corpus, env, deadline, tally) for i in range(half)),
        *(_cli_client(i, corpus, env, deadline, tally) for i in range(procs - half)))


def _scratch(source: Path, prefix: str) -> tuple[Path, Path]:
    """A copy of the corpus (the run edits files) and an empty home beside it."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    shutil.copytree(source, work / "corpus")
    return work / "corpus", work / "home"


def load(args: argparse.Namespace) -> None:
    """The load test on each backend, side by side."""
    rows = []
    for backend, url in (("sqlite", None), ("postgresql", args.url)):
        corpus, home = _scratch(args.corpus, "peek-load-")
        work = corpus.parent
        peek = _peek(corpus, home, url)
        peek.index()
        peek.close()
        env = _env(url, home)
        tally: dict[str, Any] = {"ops": 0, "errors": [], "sessions": []}
        started = time.monotonic()
        asyncio.run(_everyone(corpus, env, started + args.seconds, tally, args.procs))
        took = time.monotonic() - started
        peek = _peek(corpus, home, url)
        history = {v.session for v in peek.map_history(limit=None)}
        view = peek.map()
        lost = len(set(tally["sessions"]) - history)
        rows.append((backend, tally["ops"], tally["ops"] / took, len(tally["errors"]),
                     len(tally["sessions"]), lost, f"{view.tokens}/{view.budget_tokens}"))
        for error in tally["errors"][:3]:
            print(f"  {backend} error: {error}")
        peek.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload: {args.procs} processes ({args.procs // 2} MCP servers, "
          f"{args.procs - args.procs // 2} CLI loops), {args.seconds:.0f} s each")
    print("| backend | ops | ops/s | client errors | sessions recorded | lost map updates | "
          "map tokens/budget |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.2f} | {r[3]} | {r[4]} | {r[5]} | {r[6]} |")


# --- crashes -----------------------------------------------------------------------------------

def _integrity(url: str | None, home: Path) -> list[str]:
    """Problems found: SQLite's integrity check, and on both backends, consistency of the
    index (every chunk has its file and full-text row, nothing extra) and the map."""
    from peek.db import open_database

    db = open_database(url or home / "peek.db")
    problems: list[str] = []
    with db.query() as conn:
        if url is None:
            ok = conn.execute("PRAGMA integrity_check").fetchall()
            if ok != [("ok",)]:
                problems.append(f"integrity_check: {ok[:3]}")
        for (cid,) in conn.execute("SELECT id FROM corpora").fetchall():
            chunks = conn.execute("SELECT COUNT(*) FROM chunks c JOIN files f ON f.id = c.file_id"
                                  " WHERE f.corpus_id = ?", (cid,)).fetchone()[0]
            fts = conn.execute(f"SELECT COUNT(*) FROM chunks_fts_{cid}").fetchone()[0]
            if chunks != fts:
                problems.append(f"corpus {cid}: {chunks} chunks but {fts} full-text rows")
            state = conn.execute("SELECT version FROM map_state WHERE corpus_id = ?",
                                 (cid,)).fetchone()
            top = conn.execute("SELECT MAX(version) FROM map_edits WHERE corpus_id = ?",
                               (cid,)).fetchone()
            if state and top and top[0] is not None and top[0] > state[0]:
                problems.append(f"corpus {cid}: edits past map version {state[0]}")
        orphans = conn.execute("SELECT COUNT(*) FROM chunks WHERE file_id NOT IN "
                               "(SELECT id FROM files)").fetchone()[0]
        if orphans:
            problems.append(f"{orphans} orphan chunks")
    db.close()
    if url and (held := _locks_held(url)):
        problems.append(f"{held} advisory locks still held")
    return problems


def _locks_held(url: str, wait: float = 5.0) -> int:
    """peek's advisory locks in this database, after giving the server `wait` seconds to end
    the sessions of killed clients (a backend busy in a statement notices at its end)."""
    from peek import postgres

    deadline = time.monotonic() + wait
    while True:
        held = int(postgres.server_facts(url)["advisory_locks_held"])
        if not held or time.monotonic() > deadline:
            return held
        time.sleep(0.2)


def _kill_mid(argv: list[str], env: dict[str, str], delay: float) -> bool:
    """Start a command and kill -9 it after `delay` s; whether it was still running."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(delay)
    running = proc.poll() is None
    if running:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    return running


def crash(args: argparse.Namespace) -> None:
    """kill -9 mid-index and mid-record, `runs` times each, per backend."""
    rows = []
    for backend, url in (("sqlite", None), ("postgresql", args.url)):
        corpus, home = _scratch(args.corpus, "peek-crash-")
        work = corpus.parent
        env = _env(url, home)
        subprocess.run([PEEK, "index", str(corpus)], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        rng = random.Random(14)
        failures, problems, killed = 0, [], {"index": 0, "record": 0}
        for n in range(args.runs):
            for kind in ("index", "record"):
                if kind == "index":  # many changed files, so the kill lands mid-write
                    for p in list(corpus.rglob("*.py"))[:: max(1, n % 5 + 2)]:
                        with p.open("a") as fh:
                            fh.write(f"\n# crash run {n}\n")
                    argv = [PEEK, "index", str(corpus)]
                else:
                    traj = work / f"t{n}.json"
                    traj.write_text(json.dumps({
                        "question": f"crash {n}: where are requests sent",
                        "steps": [{"tool": "read_file", "args": {"path": _files(corpus, n)[0]},
                                   "paths": [_files(corpus, n)[0]]}],
                        "answer": "there", "citations": [],
                        "outcome": {"edited_files": [_files(corpus, n)[1]], "success": True}}))
                    argv = [PEEK, "record", str(corpus), "--trajectory", str(traj)]
                killed[kind] += _kill_mid(argv, env, rng.uniform(0.6, 2.5))
                after = subprocess.run([PEEK, "status", str(corpus)], env=env,
                                       capture_output=True, text=True, timeout=120)
                failures += after.returncode != 0
                problems += _integrity(url, home)
        final = subprocess.run([PEEK, "index", str(corpus)], env=env, capture_output=True,
                               text=True, timeout=600)
        failures += final.returncode != 0
        problems += _integrity(url, home)
        rows.append((backend, killed["index"], killed["record"], failures, len(problems)))
        for p in problems[:3]:
            print(f"  {backend}: {p}")
        shutil.rmtree(work, ignore_errors=True)
    print(f"| backend | indexers killed (of {args.runs}) | recorders killed (of {args.runs}) | "
          "next command failed | integrity/lock problems |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} |")


# --- latency -----------------------------------------------------------------------------------

def _p50(fn: Callable[[], object], calls: int) -> tuple[float, float]:
    fn()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    times.sort()
    return statistics.median(times) * 1000, times[int(len(times) * 0.95)] * 1000


def latency(args: argparse.Namespace) -> None:
    """Warm search and map in one process, per backend (the MCP server's path)."""
    queries = ["integrate rational function", "simplify trigonometric expression",
               "matrix determinant", "solve linear system", "series expansion limit",
               "printing latex", "symbol assumptions positive", "polynomial factor"]
    rows = []
    home = args.home or Path(tempfile.mkdtemp(prefix="peek-latency-"))
    for backend, url in (("sqlite", None), ("postgresql", args.url)):
        peek = _peek(args.corpus, home, url)
        if not peek.indexed:
            peek.index()
        cycle = iter(range(10**9))
        search = _p50(lambda p=peek, c=cycle: p.search(queries[next(c) % len(queries)], 10),
                      args.calls)
        mapped = _p50(lambda p=peek: p.map(), args.calls)
        rows.append((backend, *search, *mapped))
        peek.close()
    print(f"| backend | search p50 ms | search p95 ms | map p50 ms | map p95 ms | "
          f"({args.corpus.name}, {args.calls} warm calls)")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.1f} | {r[2]:.1f} | {r[3]:.1f} | {r[4]:.1f} |")


# --- stemmers ------------------------------------------------------------------------------

TEXT_SUFFIXES = {".py", ".pyi", ".md", ".rst", ".txt", ".toml", ".cfg", ".ini", ".html", ".js",
                 ".css", ".json", ".yml", ".yaml", ".c", ".h"}


def _classes(words: set[str], stem_of: Callable[[str], str]) -> dict[str, frozenset[str]]:
    """Each word's class: the words the same stem joins it with (what decides BM25's counts)."""
    by_stem: dict[str, set[str]] = {}
    for w in words:
        by_stem.setdefault(stem_of(w), set()).add(w)
    return {w: frozenset(by_stem[stem_of(w)]) for w in words}


def stemmers(args: argparse.Namespace) -> None:
    """pg_lexical's terms (diacritics folded, Porter-stemmed) against SQLite FTS5's porter over
    every word of each corpus's text files: words stemmed differently, and words whose stem
    class differs."""
    from peek.retrieval.pg_lexical import fts5_stems, term, tokens

    names = args.only.split(",") if args.only else sorted(
        p.name for p in args.corpora.iterdir() if p.is_dir() and p.name != "sdists")
    print("| corpus | distinct words | stem differs | class differs | examples (word: fts5 / pg) |")
    print("|---|---|---|---|---|")
    for name in names:
        words: set[str] = set()
        for path in (args.corpora / name).rglob("*"):
            if path.suffix in TEXT_SUFFIXES and path.is_file():
                words.update(tokens(path.read_text(encoding="utf-8", errors="ignore"), False))
        fts5 = fts5_stems(words)
        kept = set(fts5)
        differ = sorted(w for w in kept if fts5[w] != term(w))
        ours, theirs = _classes(kept, term), _classes(kept, fts5.__getitem__)
        split = sum(ours[w] != theirs[w] for w in kept)
        shown = ", ".join(f"{w}: {fts5[w]} / {term(w)}" for w in differ[:6])
        print(f"| {name} | {len(kept)} | {len(differ)} | {split} | {shown} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("same", "learned", "load", "crash", "latency", "stemmers"):
        p = sub.add_parser(name)
        p.add_argument("corpora" if name in ("same", "learned", "stemmers") else "corpus",
                       type=Path)
        p.add_argument("--url", required=name != "stemmers")
        p.add_argument("--only")
        p.add_argument("--seconds", type=float, default=120)
        p.add_argument("--procs", type=int, default=8)
        p.add_argument("--runs", type=int, default=20)
        p.add_argument("--calls", type=int, default=200)
        p.add_argument("--rows", type=int, default=10**6)
        p.add_argument("--home", type=Path, help="reuse this home (and the URL's store) warm")
    args = parser.parse_args()
    {"same": same, "learned": learned, "load": load, "crash": crash, "latency": latency,
     "stemmers": stemmers}[args.command](args)


if __name__ == "__main__":
    main()
