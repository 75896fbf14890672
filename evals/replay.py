"""`peek eval --replay`: replay a project's history and measure whether peek learns from it.

Each row is a real change: the request (a pull request's title) and the files it edited, oldest
first. The `learned` arm asks each row, scores the answer, then records the edited files as the
outcome, exactly as a host agent reports through `peek_record`; the `off` arm asks the same rows
on its own fresh store with learning off. The first half of each corpus warms up; the later half
is reported, per corpus and overall, with a learning curve of recall@5 per block of rows. The
rows 25-50% of each corpus are reported apart as the tune split (`tune`): ranking changes are
decided there, never on the later halves. Every store is a scratch one (a temporary folder, or
scratch schemas on the PostgreSQL server that PEEK_DATABASE_URL names): the user's store is
never opened.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peek.agent.session import Budgets
from peek.bounds import check_summary
from peek.config import database_url
from peek.errors import QueryError
from peek.evals.evaluate import (
    KS,
    GoldQuestion,
    Scored,
    map_state,
    score,
    scratch_stores,
    summarize,
)
from peek.service import Peek

ARMS = ("learned", "off")
BLOCK = 50
RowHook = Callable[[str, str, int, int], None]


@dataclass(frozen=True, slots=True)
class ReplayRow:
    """One change of a project's history: the request and the files it edited."""

    id: str
    corpus: str
    question: str
    gold_files: tuple[str, ...]
    summary: str | None = None  # what the change did (e.g. its commit body), if the row says

    def as_question(self) -> GoldQuestion:
        """The row as an evaluation item."""
        return GoldQuestion(self.id, self.question, self.gold_files)


def load_replay(path: Path) -> list[ReplayRow]:
    """JSON lines with `corpus`, `question` and `gold_files` (and `id`, and `summary`: what the
    change did, recorded with its outcome as a host would), oldest first."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise QueryError(f"cannot read {path}: {exc}", "give a JSON-lines file") from exc
    rows = [_row(line, n, path) for n, line in enumerate(lines, 1) if line.strip()]
    if not rows:
        raise QueryError(f"{path} has no rows", "one JSON object per line")
    return rows


def _row(line: str, n: int, path: Path) -> ReplayRow:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise QueryError(f"{path}:{n} is not JSON: {exc.msg}") from exc
    ok = isinstance(raw, dict) and isinstance(raw.get("question"), str) and isinstance(
        raw.get("gold_files"), list) and raw.get("gold_files") and isinstance(
        raw.get("corpus"), str)
    if not ok:
        raise QueryError(f"{path}:{n} needs 'corpus' and 'question' (strings) and a non-empty "
                         "'gold_files' list")
    try:
        summary = check_summary(raw.get("summary"))
    except QueryError as exc:
        raise QueryError(f"{path}:{n}: {exc.message}", exc.hint) from None
    return ReplayRow(str(raw.get("id", n)), raw["corpus"], raw["question"],
                     tuple(str(f) for f in raw["gold_files"]), summary)


def resolve_corpora(rows: Sequence[ReplayRow], given: Sequence[Path]) -> dict[str, Path]:
    """Each row's corpus folder: a given folder of that name, or that name inside one."""
    found: dict[str, Path] = {}
    for name in dict.fromkeys(r.corpus for r in rows):
        if name in ("", ".", ".."):
            raise QueryError(f"corpus {name!r} is not a folder name",
                             "name the corpus's folder, as in corpora.json")
        for base in given:
            for candidate in (base, base / name):
                if candidate.name == name and candidate.is_dir():
                    found.setdefault(name, candidate)
        if name not in found:
            raise QueryError(f"no folder for corpus {name!r}",
                             "pass --corpus PATH naming it or the folder that holds it")
    return found


def check_gold(rows: Sequence[ReplayRow], corpora: dict[str, Path],
               ) -> tuple[list[ReplayRow], list[dict[str, Any]]]:
    """The rows to replay and those dropped, checked before anything runs: a gold path that
    leaves its corpus is an error; a row whose gold file is not in the corpus (a history
    newer or older than the corpus) is dropped and reported, so one row cannot lose the run."""
    kept: list[ReplayRow] = []
    dropped: list[dict[str, Any]] = []
    for row in rows:
        missing = [g for g in row.gold_files if not _gold_file(corpora[row.corpus], row, g)]
        if missing:
            dropped.append({"id": row.id, "corpus": row.corpus, "missing": missing})
        else:
            kept.append(row)
    return kept, dropped


def _gold_file(corpus: Path, row: ReplayRow, gold: str) -> bool:
    """Whether a gold path names a file inside its corpus; a path leaving it is an error."""
    root = corpus.resolve()
    path = (root / gold).resolve()
    if Path(gold).is_absolute() or not path.is_relative_to(root):
        raise QueryError(f"row {row.id}: gold file {gold!r} is not a path in corpus "
                         f"{row.corpus} ({root})",
                         "gold files are paths relative to the corpus folder")
    return path.is_file()


def replay(rows: Sequence[ReplayRow], corpora: dict[str, Path], *,
           arms: Sequence[str] = ARMS, budgets: Budgets | None = None,
           on_row: RowHook | None = None, evolve_steps: int | None = None) -> dict[str, Any]:
    """Replay every corpus's rows in order on scratch stores; the report `peek eval` prints.

    `evolve_steps` freezes the learned arm's map after that many updates (PEEK's m).
    """
    rows, dropped = _checked(rows, corpora, arms)
    by_corpus: dict[str, list[ReplayRow]] = {}
    for r in rows:
        by_corpus.setdefault(r.corpus, []).append(r)
    scored: dict[str, dict[str, list[Scored]]] = {a: {} for a in arms}
    maps: dict[str, dict[str, Any]] = {}
    timing: dict[str, list[float]] = {"ask": [], "record": []}
    with scratch_stores(database_url()) as scratch:
        for name, items in by_corpus.items():
            base = scratch.fresh(corpora[name], f"{name}/base")
            base.index()
            for arm in arms:
                peek = scratch.copy(base, f"{name}/{arm}")
                if arm == "learned" and evolve_steps is not None:
                    peek.map_configure(evolve_steps=evolve_steps)
                scored[arm][name] = _run_arm(peek, arm, items, budgets or Budgets(), timing,
                                             on_row)
                if arm == "learned":
                    maps[name] = map_state(peek)
    report = _report(scored, by_corpus, timing)
    report["dropped"] = dropped
    if maps:
        report["arms"]["learned"]["map"] = maps
    return report


def _checked(rows: Sequence[ReplayRow], corpora: dict[str, Path], arms: Sequence[str],
             ) -> tuple[list[ReplayRow], list[dict[str, Any]]]:
    """The arms and rows checked before any work: the rows to replay and those dropped."""
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        raise QueryError(f"unknown arm {', '.join(unknown) or '(none)'}",
                         f"choose from {', '.join(ARMS)}")
    kept, dropped = check_gold(rows, corpora)
    if not kept:
        raise QueryError("no row of the replay has its gold files in its corpus",
                         "check that --corpus names the folders the rows were made for")
    return kept, dropped


def _run_arm(peek: Peek, arm: str, items: Sequence[ReplayRow], budgets: Budgets,
             timing: dict[str, list[float]], on_row: RowHook | None) -> list[Scored]:
    out = []
    for n, item in enumerate(items, 1):
        start = time.perf_counter()
        result = peek.ask(item.question, None, budgets, learn=arm == "learned")
        asked = time.perf_counter()
        out.append(score(result, item.as_question(), asked - start))
        if arm == "learned":
            peek.record(session=result.session, edited=list(item.gold_files), success=True,
                        summary=item.summary)
            timing["ask"].append(asked - start)
            timing["record"].append(time.perf_counter() - asked)
        if on_row is not None:
            on_row(arm, item.corpus, n, len(items))
    return out


def _report(scored: dict[str, dict[str, list[Scored]]], by_corpus: dict[str, list[ReplayRow]],
            timing: dict[str, list[float]]) -> dict[str, Any]:
    report: dict[str, Any] = {"rows": sum(len(v) for v in by_corpus.values()),
                              "reported": "later half of each corpus", "arms": {}}
    for arm, per_corpus in scored.items():
        later = {c: rows[len(rows) // 2:] for c, rows in per_corpus.items()}
        tune = {c: rows[len(rows) // 4:len(rows) // 2] for c, rows in per_corpus.items()}
        report["arms"][arm] = {
            "corpora": {c: summarize(rows) for c, rows in later.items()},
            "all": summarize([r for rows in later.values() for r in rows]),
            "tune": _split(tune),
            "curve": {c: _curve(rows) for c, rows in per_corpus.items()},
        }
    if "learned" in scored and "off" in scored:
        report["gain_recall@5"] = _gains(report["arms"])
    if timing["ask"]:
        report["learned_ms"] = {k: _p50_ms(v) for k, v in timing.items()}
    return report


def _split(per_corpus: dict[str, list[Scored]]) -> dict[str, Any]:
    """The tune split (rows 25-50% of each corpus, warmed on the rows before): where ranking
    choices are made, so the reported later halves are measured once, untuned."""
    out = {c: summarize(rows) for c, rows in per_corpus.items()}
    out["all"] = summarize([r for rows in per_corpus.values() for r in rows])
    return out


def _curve(rows: list[Scored]) -> list[float]:
    """Recall@5 per block of BLOCK rows, in replay order."""
    return [round(statistics.mean(r.recall[5] for r in rows[i:i + BLOCK]), 4)
            for i in range(0, len(rows), BLOCK)]


def _gains(arms: dict[str, Any]) -> dict[str, float]:
    learned, off = arms["learned"], arms["off"]
    gains = {c: round(s["recall@5"] - off["corpora"][c]["recall@5"], 4)
             for c, s in learned["corpora"].items()}
    gains["all"] = round(learned["all"]["recall@5"] - off["all"]["recall@5"], 4)
    return gains


def _p50_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1)


__all__ = ["ARMS", "KS", "ReplayRow", "load_replay", "replay", "resolve_corpora"]
