"""`peek eval`: ask a set of questions and score the cited files against gold files (A/B)."""

from __future__ import annotations

import json
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peek.agent.models import Model
from peek.agent.session import AskResult, Budgets
from peek.errors import QueryError
from peek.service import Peek

KS = (1, 5, 10)


@dataclass(frozen=True, slots=True)
class GoldQuestion:
    """One evaluation item: the question and the files a correct answer must cite."""

    id: str
    question: str
    gold_files: tuple[str, ...]


@dataclass(slots=True)
class Scored:
    """One answered question with its ranks and costs."""

    id: str
    ranked: list[str]
    gold: tuple[str, ...]
    steps: int
    seconds: float
    tokens: int
    cost: float | None = None
    recall: dict[int, float] = field(default_factory=dict)
    rr: float = 0.0


def load_questions(path: Path) -> list[GoldQuestion]:
    """JSON lines with `question` and `gold_files` (and optionally `id`)."""
    items = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise QueryError(f"cannot read {path}: {exc.strerror}", "check the path") from exc
    except UnicodeDecodeError as exc:
        raise QueryError(f"{path} is not UTF-8 text", "one JSON object per line") from exc
    for n, line in enumerate(lines, 1):
        if line.strip():
            items.append(_question(_json_line(line, n, path), n, path))
    if not items:
        raise QueryError(f"{path} has no questions", "one JSON object per line")
    return items


def _json_line(line: str, n: int, path: Path) -> Any:
    try:
        return json.loads(line)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        message = f"{path}:{n} is not valid JSON ({exc})"
        raise QueryError(message, "one JSON object per line") from exc


def _question(raw: Any, n: int, path: Path) -> GoldQuestion:
    if not isinstance(raw, dict) or not isinstance(raw.get("question"), str) or not isinstance(
            raw.get("gold_files"), list) or not all(isinstance(g, str) for g in raw["gold_files"]):
        raise QueryError(f"{path}:{n} needs 'question' (string) and 'gold_files' (list)")
    return GoldQuestion(str(raw.get("id", n)), raw["question"], tuple(raw["gold_files"]))


def score(result: AskResult, item: GoldQuestion, seconds: float) -> Scored:
    """File-level recall@k and reciprocal rank of the answer's cited files, in citation order."""
    ranked = list(dict.fromkeys(c.path for c in result.citations))
    gold = set(item.gold_files)
    recall = {k: len(gold & set(ranked[:k])) / len(gold) for k in KS}
    rr = next((1.0 / (i + 1) for i, p in enumerate(ranked) if p in gold), 0.0)
    tokens = result.input_tokens + result.output_tokens
    return Scored(item.id, ranked, item.gold_files, result.steps, seconds, tokens,
                  result.cost_usd, recall, rr)


def summarize(rows: list[Scored]) -> dict[str, Any]:
    """The `peek eval --json` metrics over answered questions."""
    if not rows:
        return {"n": 0}
    out: dict[str, Any] = {"n": len(rows)}
    for k in KS:
        out[f"recall@{k}"] = round(statistics.mean(r.recall[k] for r in rows), 4)
    out["mrr"] = round(statistics.mean(r.rr for r in rows), 4)
    out["steps_mean"] = round(statistics.mean(r.steps for r in rows), 2)
    out["seconds_mean"] = round(statistics.mean(r.seconds for r in rows), 3)
    out["tokens_mean"] = round(statistics.mean(r.tokens for r in rows), 1)
    costs = [r.cost for r in rows if r.cost is not None]
    out["cost_usd"] = round(sum(costs), 6) if costs else None
    return out


def ask_all(peek: Peek, items: list[GoldQuestion], model: Model | None, budgets: Budgets,
            learn: bool, on_item: Callable[[Scored], None] | None = None) -> list[Scored]:
    """Ask each question in order; optionally let each session teach the map."""
    rows = []
    for item in items:
        start = time.perf_counter()
        result = peek.ask(item.question, model, budgets, learn=learn)
        row = score(result, item, time.perf_counter() - start)
        rows.append(row)
        if on_item is not None:
            on_item(row)
    return rows


def teach(peek: Peek, items: list[GoldQuestion], model: Model | None, budgets: Budgets) -> None:
    """Ask each question, then record its gold files as what the user edited (a success)."""
    for item in items:
        result = peek.ask(item.question, model, budgets, learn=True)
        peek.record(session=result.session, edited=list(item.gold_files), success=True)


def evaluate(corpus: Path, items: list[GoldQuestion], *, home: Path | None, model: Model | None,
             budgets: Budgets, learn_n: int = 0,
             evolve_steps: int | None = None) -> dict[str, Any]:
    """Score the questions on scratch copies of the store, so the real map is never changed.

    With `learn_n`, the no-map arm is copied before any teaching, so it has neither the
    taught map nor the taught sessions' memory and outcomes: an honest A/B.
    """
    if learn_n < 0 or learn_n >= len(items) and learn_n:
        raise QueryError(f"--learn {learn_n} leaves no question to score",
                         f"use a number below {len(items)}")
    source = Peek(corpus, home)
    source.corpus_id  # noqa: B018 - fails clearly when the corpus is not indexed
    with scratch_stores(source.settings.database_url) as scratch:
        learned = scratch.copy(source, "learned")
        empty = scratch.copy(source, "empty", reset_map=True) if learn_n else None
        if learn_n:
            if evolve_steps is not None:  # PEEK's m: the map freezes after m updates
                learned.map_configure(evolve_steps=evolve_steps)
            teach(learned, items[:learn_n], model, budgets)
        scored = items[learn_n:]
        out = summarize(ask_all(learned, scored, model, budgets, learn=False))
        out["no_map"] = None
        if empty is not None:
            out["no_map"] = summarize(ask_all(empty, scored, model, budgets, learn=False))
        out["map"] = map_state(learned)
    out["learned_from"] = learn_n
    return out


def map_state(peek: Peek) -> dict[str, Any]:
    """The learned map's version, policy updates, evolve steps and whether it froze: how a
    report shows what `--evolve-steps` did to a store that is gone afterwards."""
    state = peek.map_export()
    return {k: state[k] for k in ("version", "updates", "evolve_steps", "frozen")}


class ScratchStores:
    """Stores that live for one evaluation and are never the user's: SQLite files in a temporary
    folder, or, when the store is on PostgreSQL, schemas on that server (dropped at the end)."""

    def __init__(self, folder: Path, url: str | None) -> None:
        self.folder = folder
        self.url = url
        self.schemas: list[tuple[str, str]] = []  # (server URL, schema), to drop at the end
        self.opened: list[Peek] = []
        self._tag = uuid.uuid4().hex[:8]

    def fresh(self, root: Path, name: str) -> Peek:
        """An empty store for `root` (index it to fill it)."""
        url = None
        if self.url is not None:
            from peek import postgres

            url = postgres.create_schema(self.url, self._schema(self.url))
        return self._open(root, name, url)

    def copy(self, source: Peek, name: str, reset_map: bool = False) -> Peek:
        """A copy of `source`'s store, taken from one snapshot, optionally map-less."""
        home = self.folder / name
        home.mkdir(parents=True)
        url = None
        if source.db.backend == "postgresql":
            from peek import postgres

            url = postgres.clone_schema(source.db.url, self._schema(source.db.url))
        else:
            with closing(sqlite3.connect(source.settings.db_path)) as src, closing(
                sqlite3.connect(home / source.settings.db_path.name)
            ) as dst:
                src.backup(dst)  # SQLite's online backup: a consistent copy of a live store
        copy = self._open(source.root, name, url)
        if reset_map:
            from peek.contextmap.curation import reset

            reset(copy.db, copy.corpus_id)
        return copy

    def _schema(self, server: str) -> str:
        """A new scratch schema's name, remembered before it exists so a failure drops it."""
        schema = f"peek_scratch_{self._tag}_{len(self.schemas)}"
        self.schemas.append((server, schema))
        return schema

    def _open(self, root: Path, name: str, url: str | None) -> Peek:
        peek = Peek(root, self.folder / name, database_url=url)
        self.opened.append(peek)
        return peek

    def close(self) -> None:
        """Close every scratch store and drop its schema."""
        for peek in self.opened:
            peek.close()
        if self.schemas:
            from peek import postgres

            for server, schema in self.schemas:
                postgres.drop_schema(server, schema)


@contextmanager
def scratch_stores(url: str | None) -> Iterator[ScratchStores]:
    """Scratch stores beside the store `url` names (None: SQLite), removed afterwards, also
    when the evaluation fails."""
    with tempfile.TemporaryDirectory(prefix="peek-eval-") as tmp:
        scratch = ScratchStores(Path(tmp), url)
        try:
            yield scratch
        finally:
            scratch.close()
