"""Localization that learns: peek's own evidence plus what past outcomes showed, weighted per
corpus by an online ranker that every recorded outcome updates.

Features of a candidate file (each about 0..1):
- what any session can see: peek's fused score and its parts (search, a named path, a named
  symbol, a matching map entry), and whether the file is a test or not code;
- what past outcomes showed: the files edited for the most similar past requests (`similar`),
  how well the question matches all past requests that edited the file (`profile`), how often
  edits land on files of its kind and in its area, how often it was edited, and how often it
  was edited together with the best candidates (`coedit`).

The weights start at peek's plain ranking plus half of each request-similarity signal,
and move with each recorded outcome by one pairwise logistic step (edited files above the
non-edited files ranked in the top ten), so each corpus learns which evidence predicts where
its work lands. Nothing here is tuned per corpus by hand; see README "What teaches peek".
"""

from __future__ import annotations

import json
import math
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from peek.db import driver
from peek.memory.outcomes import PastOutcome, outcome_document, similar_outcomes
from peek.retrieval.lexical import (
    create_fts,
    fts_add,
    fts_delete_key,
    fts_match,
    is_test_path,
    table_exists,
)
from peek.retrieval.locate import FileScore, rank_files
from peek.text import query_terms

if TYPE_CHECKING:
    from peek.db import AnyConnection
    from peek.retrieval.graph import FileGraph

FEATURES = ("base", "lexical", "path", "symbol", "map", "test", "non_code", "similar",
            "profile", "kind_share", "area_share", "edits", "coedit")
INITIAL = (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0)
LEARNING_RATE = 0.1
NEGATIVES = 10
POOL = 60
SIMILAR_K = 10
PROFILE_K = 50
COEDIT_SEEDS = 3
STORED = 40
CODE_SUFFIXES = frozenset({"py", "pyi", "js", "jsx", "ts", "tsx", "go", "pyx", "c", "h", "rs"})


@dataclass(slots=True)
class Candidate:
    """A file with its feature vector, its learned score and why it ranks where it does."""

    path: str
    features: list[float]
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)
    found: FileScore | None = None


@dataclass(frozen=True, slots=True)
class History:
    """What recorded outcomes say about files: edits per file, per kind and per area."""

    edits: dict[str, int]
    kinds: dict[str, int]
    areas: dict[str, int]
    total: int
    most: int  # the most edits of one file, the scale of the `edits` feature


def localize(conn: AnyConnection, corpus_id: int, question: str, graph: FileGraph | None,
             boosts: dict[str, tuple[float, str]], k: int,
             first: set[str] | None = None) -> tuple[list[FileScore], list[Candidate]]:
    """The k best files (with reasons) and every scored candidate (to learn from later);
    files in `first` (what a person vouched for) lead, whatever was learned."""
    base = rank_files(conn, corpus_id, question, POOL, graph, boosts)
    cands = candidates(conn, corpus_id, question, base)
    weights = load_weights(conn, corpus_id)
    for c in cands:
        c.score = sum(w * x for w, x in zip(weights, c.features, strict=True))
    lead = first or set()
    cands.sort(key=lambda c: (c.path not in lead, -c.score, c.path))
    return [_as_file_score(c) for c in cands[:k]], cands


def candidates(conn: AnyConnection, corpus_id: int, question: str,
               base: list[FileScore]) -> list[Candidate]:
    """Feature vectors for peek's candidates and every file past outcomes point to."""
    hist = history(conn, corpus_id)
    similar, why = similar_files(conn, corpus_id, question)
    profile = profile_scores(conn, corpus_id, question) if hist.total else {}
    coedit = coedits(conn, corpus_id, [f.path for f in base[:COEDIT_SEEDS]]) if hist.total else {}
    found = {f.path: f for f in base}
    top = max((f.score for f in base), default=0.0) or 1.0
    paths = list(dict.fromkeys([*found, *similar, *profile]))
    out = []
    for path in paths:
        f = found.get(path)
        parts = f.parts if f is not None else {}
        vector = [
            (f.score / top) if f is not None else 0.0, parts.get("lexical", 0.0),
            min(parts.get("path", 0.0), 1.0), min(parts.get("symbol", 0.0), 2.0) / 2.0,
            min(parts.get("map", 0.0), 1.0), 1.0 if is_test_path(path) else 0.0,
            0.0 if _suffix(path) in CODE_SUFFIXES else 1.0, similar.get(path, 0.0),
            profile.get(path, 0.0), _share(hist.kinds, _suffix(path), hist.total),
            _share(hist.areas, _area(path), hist.total), _edits(hist, path),
            min(coedit.get(path, 0.0), 1.0)]
        reasons = _reasons(f, path, why) or (["learned: edited for requests like this"]
                                             if path in profile else [])
        out.append(Candidate(path, vector, reasons=reasons, found=f))
    return out


def _suffix(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def _area(path: str) -> str:
    return "/".join(path.split("/")[:2])


def _share(counts: dict[str, int], key: str, total: int) -> float:
    return counts.get(key, 0) / total if total else 0.0


def _edits(hist: History, path: str) -> float:
    return math.log1p(hist.edits.get(path, 0)) / math.log1p(hist.most) if hist.most else 0.0


def _reasons(found: FileScore | None, path: str, why: dict[str, str]) -> list[str]:
    reasons = list(found.reasons) if found is not None else []
    if path in why:
        reasons.insert(0, f"learned: similar request {why[path]!r}")
    if found is not None and found.parts.get("lexical"):
        reasons.append("search")
    if found is not None and found.parts.get("graph"):
        reasons.append("graph")
    return reasons


def _as_file_score(c: Candidate) -> FileScore:
    hits = c.found.hits if c.found is not None else []
    return FileScore(c.path, c.score, hits, c.reasons, dict(zip(FEATURES, c.features,
                                                                strict=True)))


def history(conn: AnyConnection, corpus_id: int) -> History:
    """Edit counts per file, per file kind (suffix) and per area (first two path parts)."""
    rows = driver(conn).execute(
        "SELECT j.value, COUNT(*) FROM session_outcomes o, json_each(o.edited) j "
        "WHERE o.corpus_id = :c GROUP BY j.value", {"c": corpus_id})
    edits = {str(p): int(n) for p, n in rows}
    kinds: dict[str, int] = defaultdict(int)
    areas: dict[str, int] = defaultdict(int)
    for path, n in edits.items():
        kinds[_suffix(path)] += n
        areas[_area(path)] += n
    return History(edits, dict(kinds), dict(areas), sum(edits.values()),
                   max(edits.values(), default=0))


def similar_files(conn: AnyConnection, corpus_id: int,
                  question: str) -> tuple[dict[str, float], dict[str, str]]:
    """Files edited for the most similar past requests, by similarity, and the request why."""
    votes: dict[str, float] = defaultdict(float)
    why: dict[str, str] = {}
    found = similar_outcomes(conn, corpus_id, question, SIMILAR_K)
    best = found[0][1] if found else 0.0
    for past, score in found:
        weight = (score / best) ** 2 * _trust(past)
        for path in past.edited:
            votes[path] += weight / math.sqrt(len(past.edited))
            why.setdefault(path, past.question[:80])
    most = max(votes.values(), default=0.0) or 1.0
    return {p: v / most for p, v in votes.items()}, why


def _trust(past: PastOutcome) -> float:
    """A failed attempt still shows where the work was, with less certainty."""
    return 0.5 if past.success is False else 1.0


def profile_scores(conn: AnyConnection, corpus_id: int, question: str) -> dict[str, float]:
    """BM25 of the question against each file's past requests, over the best one."""
    terms = query_terms(question)
    table = profile_table(corpus_id)
    if not terms or not table_exists(conn, table):
        return {}
    rows = fts_match(conn, table, terms, PROFILE_K, key="path")
    best = rows[0][2] if rows else 0.0
    return {str(p): score / best for _, p, score in rows} if best > 0 else {}


def coedits(conn: AnyConnection, corpus_id: int, seeds: Sequence[str]) -> dict[str, float]:
    """How often each file was edited together with the seeds, as a share of their edits."""
    if not seeds:
        return {}
    rows = driver(conn).execute(
        "SELECT a.value, b.value, COUNT(*) FROM session_outcomes o, json_each(o.edited) a, "
        "json_each(o.edited) b WHERE o.corpus_id = :c AND a.value IN "
        "(SELECT value FROM json_each(:seeds)) AND b.value != a.value "
        "GROUP BY a.value, b.value", {"c": corpus_id, "seeds": json.dumps(list(seeds))})
    pairs: dict[str, dict[str, int]] = defaultdict(dict)
    for a, b, n in rows:
        pairs[str(a)][str(b)] = int(n)
    out: dict[str, float] = defaultdict(float)
    for partners in pairs.values():
        total = sum(partners.values())
        for other, n in partners.items():
            out[other] += n / total
    return dict(out)


def profile_table(corpus_id: int) -> str:
    """Per corpus: one FTS row per edited file holding the requests that edited it."""
    return f"outcome_files_fts_{int(corpus_id)}"


def index_outcome(conn: AnyConnection, corpus_id: int, edited: Iterable[str],
                  summaries: bool = True) -> None:
    """Rebuild the profile rows of the edited files from every request that edited them and
    what each change did (`summaries=False` for a store whose outcomes have no summary column
    yet: a migration rebuilding indexes at an older revision)."""
    table = profile_table(corpus_id)
    create_fts(conn, table, "path UNINDEXED", "body")
    summary = "o.summary" if summaries else "NULL"
    for path in sorted(set(edited)):
        rows = driver(conn).execute(
            f"SELECT o.question, {summary} FROM session_outcomes o, json_each(o.edited) j "
            "WHERE o.corpus_id = :c AND j.value = :p ORDER BY o.id", {"c": corpus_id, "p": path})
        fts_delete_key(conn, table, "path", path)
        body = "\n".join(outcome_document(q, s) for q, s in rows)
        if body:  # a file whose every outcome was retracted has no profile
            fts_add(conn, table, [(None, path, body)], key="path")


# ------------------------------------------------------------------ the online ranker

def load_weights(conn: AnyConnection, corpus_id: int) -> list[float]:
    """This corpus's learned weights (the initial ones before any outcome)."""
    row = driver(conn).execute("SELECT weights FROM ranker_state WHERE corpus_id = :c",
                               {"c": corpus_id}).fetchone()
    raw = row[0] if row else None
    if raw is None:
        return list(INITIAL)
    stored = dict(json.loads(raw))
    return [float(stored.get(name, init)) for name, init in zip(FEATURES, INITIAL, strict=True)]


def learn(conn: AnyConnection, corpus_id: int, ranked: Sequence[Candidate],
          edited: Iterable[str]) -> dict[str, float]:
    """One pairwise logistic step: each edited file above each non-edited top-ten file;
    returns the step as stored (kept so a retraction can take it back)."""
    gold = set(edited)
    weights = before = load_weights(conn, corpus_id)
    positives = [c for c in ranked if c.path in gold]
    negatives = [c for c in ranked[:NEGATIVES] if c.path not in gold]
    for pos in positives:
        for neg in negatives:
            diff = [a - b for a, b in zip(pos.features, neg.features, strict=True)]
            margin = sum(w * d for w, d in zip(weights, diff, strict=True))
            step = LEARNING_RATE / (1.0 + math.exp(min(50.0, margin)))
            weights = [w + step * d for w, d in zip(weights, diff, strict=True)]
    _save_weights(conn, corpus_id, weights)
    return weight_step(before, [round(w, 6) for w in weights])


def _save_weights(conn: AnyConnection, corpus_id: int, weights: list[float],
                  counted: int = 1) -> None:
    data = json.dumps({n: round(w, 6) for n, w in zip(FEATURES, weights, strict=True)})
    driver(conn).execute(
        "INSERT INTO ranker_state(corpus_id, weights, updates) VALUES (:c, :w, :first) "
        "ON CONFLICT(corpus_id) DO UPDATE SET weights = :w, updates = CASE WHEN "
        "ranker_state.updates + :n < 0 THEN 0 ELSE ranker_state.updates + :n END",
        {"c": corpus_id, "w": data, "first": max(0, counted), "n": counted})


def weight_step(before: Sequence[float], after: Sequence[float]) -> dict[str, float]:
    """The step one outcome moved the weights by, per feature (kept to take it back)."""
    steps = {n: round(b - a, 6) for n, a, b in zip(FEATURES, before, after, strict=True)}
    return {n: d for n, d in steps.items() if d != 0.0}


def unlearn(conn: AnyConnection, corpus_id: int, step: dict[str, float]) -> None:
    """Take one retracted outcome's step back (later steps stay: they were taken since)."""
    weights = [w - step.get(n, 0.0) for n, w in zip(FEATURES, load_weights(conn, corpus_id),
                                                     strict=True)]
    _save_weights(conn, corpus_id, weights, counted=-1)


def pack(cands: Sequence[Candidate]) -> bytes:
    """The best candidates as stored with a session, so recording its outcome needs no new
    search; an edited file ranked below the first STORED is not learned from (small rows)."""
    rows = [[c.path, [round(x, 3) for x in c.features]] for c in cands[:STORED]]
    return zlib.compress(json.dumps({"features": FEATURES, "candidates": rows}).encode())


def unpack(blob: bytes | None) -> list[Candidate] | None:
    """Stored candidates in their ranked order, or None if absent or from other features."""
    if not blob:
        return None
    data = json.loads(zlib.decompress(blob))
    if tuple(data.get("features", ())) != FEATURES:
        return None
    return [Candidate(str(p), [float(x) for x in v]) for p, v in data["candidates"]]
