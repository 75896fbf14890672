"""The offline policy: a fixed, deterministic use of peek's own tools that needs no model.

Order: map entries that match the question → ranked files (lexical search, the paths, modules
and symbols the question names, personalized PageRank over the import graph) → sandboxed reads
of the best spans → an answer of ranked locations, the lines that matter and a short
extractive summary. Ranking uses what recorded outcomes taught (`peek.agent.localize`); the
answer itself teaches nothing until someone reports what it led to (`peek record`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from peek.agent.localize import Candidate, localize, pack
from peek.agent.session import AskResult, Budgets, SessionStore, new_session_id
from peek.contextmap.citation import Citation
from peek.retrieval.lexical import term_idf
from peek.retrieval.locate import FileScore
from peek.sandbox import FileSlice, FileTools, SandboxError
from peek.text import query_terms

if TYPE_CHECKING:
    from peek.agent.workspace import Workspace
    from peek.contextmap.model import ContextMap, Entry

MODEL_NAME = "offline"
ANSWER_FILES = 10
READ_FILES = 3
KEY_LINES = 3
HEAD_LINES = 30
# A map entry applies when the words it shares with the question are specific enough: each
# counted word must be rare in the corpus (normalized idf), and together carry enough weight.
# Generic words ("sympy", "expression") then never pull a learned location into an answer.
MAP_MIN_IDF = 0.3
MAP_MIN_WEIGHT = 0.75
MAP_HALF_WEIGHT = 0.75
VOUCHED = 2.0
_LINE = re.compile(r"^\s*(\d+)\| ?(.*)$")


@dataclass(frozen=True, slots=True)
class Span:
    """A read span: its citation and the lines that matter for the question."""

    citation: Citation
    symbol: str | None
    key_lines: list[tuple[int, str]]


def run_offline(peek: Workspace, question: str, budgets: Budgets, session: str | None = None,
                learn: bool = True) -> AskResult:
    """Answer with ranked, cited locations; every step is recorded as a trajectory step.

    With `learn` the session is stored with its scored candidates (one write), so a later
    outcome can teach the ranker without searching again; without it nothing is written.
    """
    session = session or new_session_id()
    steps: list[dict[str, Any]] = []
    cmap = _map_now(peek)
    matched = map_matches(peek, question, cmap)
    steps.append(_step("map", {"question": question[:200]}, _anchor_paths(matched)))
    ranked, cands = _locate(peek, question, matched)
    steps.append(_step("search", {"query": question[:200], "k": 10}, [f.path for f in ranked]))
    spans = _read_spans(peek, ranked, question, steps, budgets.max_steps - len(steps))
    spans = _verified(peek, spans)
    result = _result(question, ranked, spans, steps, session, budgets)
    result.map_version = cmap.state.version
    if learn:
        SessionStore(peek.db, peek.corpus_id).save(result, question, MODEL_NAME, pack(cands))
    return result


def _map_now(peek: Workspace) -> ContextMap:
    """The entries with freshness checked; no rendering, so no tokenizer on this path."""
    from peek.contextmap.snapshot import entries_now

    return entries_now(peek.db, peek.corpus_id, peek.root)


def map_matches(peek: Workspace, question: str,
                cmap: ContextMap | None = None) -> list[tuple[Entry, float]]:
    """Map entries that share specific (rare in the corpus) words with the question.

    A matching entry a person pinned or wrote has strength VOUCHED (above any learned one),
    and the files it anchors are answered first: a person's word wins over what was learned.
    """
    from peek.contextmap.snapshot import vouched

    terms = set(query_terms(question))
    cmap = cmap or _map_now(peek)
    entries = [e for e in cmap.ordered() if e.anchors and not e.outdated]
    shared = {e.id: terms & set(query_terms(e.text)) for e in entries}
    wanted = sorted(set().union(*shared.values())) if shared else []
    with peek.db.query() as conn:
        idf = term_idf(conn, peek.corpus_id, wanted)
        people = vouched(conn, peek.corpus_id, entries)
    found = []
    for entry in entries:
        floor = 0.0 if entry.id in people else MAP_MIN_IDF  # a person's words all count
        weight = sum(idf[t] for t in shared[entry.id] if idf[t] >= floor)
        if weight >= MAP_MIN_WEIGHT:
            strength = VOUCHED if entry.id in people else weight / (weight + MAP_HALF_WEIGHT)
            found.append((entry, strength))
    return found


def learned_files(peek: Workspace, question: str, k: int) -> list[tuple[str, str]]:
    """The top files by the learned ranking that learning (not search alone) put there."""
    ranked, _ = _locate(peek, question, map_matches(peek, question))
    learned = ("learned:", "map ")
    return [(f.path, "; ".join(r for r in f.reasons if r.startswith(learned)))
            for f in ranked[:k] if any(r.startswith(learned) for r in f.reasons)]


def _anchor_paths(matched: list[tuple[Entry, float]]) -> list[str]:
    return sorted({a.path for entry, _ in matched for a in entry.anchors})


def _locate(peek: Workspace, question: str,
            matched: list[tuple[Entry, float]]) -> tuple[list[FileScore], list[Candidate]]:
    boosts: dict[str, tuple[float, str]] = {}
    for entry, strength in matched:
        for anchor in entry.anchors:
            prior = boosts.get(anchor.path, (0.0, ""))
            if strength > prior[0]:
                boosts[anchor.path] = (strength, f"map {entry.id}")
    graph = peek.graph()
    first = {p for p, (strength, _) in boosts.items() if strength >= VOUCHED}
    with peek.db.query() as conn:
        return localize(conn, peek.corpus_id, question, graph, boosts, ANSWER_FILES, first)


def _read_spans(peek: Workspace, ranked: list[FileScore], question: str,
                steps: list[dict[str, Any]], allowed: int) -> list[Span]:
    """Read the best span of each top file through the sandbox; cite only the lines read."""
    tools = FileTools(peek.root, max_file_bytes=peek.settings.max_file_bytes)
    terms = set(query_terms(question))
    spans = []
    for n, item in enumerate(ranked[: min(ANSWER_FILES, max(allowed, 0))]):
        start, end, symbol = _best_span(item)
        read = _read(tools, item.path, start, end, steps)
        if read is None:
            continue
        key = _key_lines(read.text, terms) if n < READ_FILES else []
        spans.append(Span(Citation(read.path, read.start, read.end), symbol, key))
    return spans


def _best_span(item: FileScore) -> tuple[int, int | None, str | None]:
    if item.hits:
        hit = item.hits[0]
        return hit.start_line, hit.end_line, hit.symbol
    return 1, HEAD_LINES, None


def _read(tools: FileTools, path: str, start: int, end: int | None,
          steps: list[dict[str, Any]]) -> FileSlice | None:
    """One sandboxed read (a trajectory step); None when it fails or the file has no lines."""
    args = {"path": path, "start": start, "end": end}
    try:
        read = tools.read_file(path, start, end)
    except SandboxError:
        steps.append(_step("read_file", args, [path], ok=False))
        return None
    steps.append(_step("read_file", args, [path]))
    return read if read.end >= read.start >= 1 else None


def _key_lines(text: str, terms: set[str]) -> list[tuple[int, str]]:
    lines = [(int(m.group(1)), m.group(2)) for m in map(_LINE.match, text.splitlines()) if m]
    scored = [(len(terms & set(query_terms(body))), n, body) for n, body in lines]
    best = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))[:KEY_LINES]
    return [(n, body.strip()) for _, n, body in sorted(best, key=lambda s: s[1])]


def _verified(peek: Workspace, spans: list[Span]) -> list[Span]:
    """Keep the spans whose citation the corpus backs (the check the README promises)."""
    from peek.agent.citations import verify_citations

    kept = set(verify_citations(peek, [s.citation for s in spans])[0])
    return [s for s in spans if s.citation in kept]


def _result(question: str, ranked: list[FileScore], spans: list[Span],
            steps: list[dict[str, Any]], session: str, budgets: Budgets) -> AskResult:
    citations = [s.citation for s in spans]
    answer = compose_answer(question, ranked, spans)
    trajectory = {
        "question": question, "steps": steps, "answer": answer,
        "citations": [{"path": c.path, "start_line": c.start_line, "end_line": c.end_line}
                      for c in citations],
    }
    stopped = "max_steps" if budgets.max_steps < len(steps) else None
    return AskResult(answer, citations, len(steps), 0, 0, None, MODEL_NAME, session, 0,
                     stopped, trajectory)


def compose_answer(question: str, ranked: list[FileScore], spans: list[Span]) -> str:
    """Ranked locations with the lines that matter, then a one-paragraph extractive summary."""
    if not spans:
        return "No location in the corpus matches this question; try other words or identifiers."
    lines = ["Most relevant locations:"]
    reasons = {item.path: item.reasons for item in ranked}
    for n, span in enumerate(spans, 1):
        label = f" {span.symbol}" if span.symbol else ""
        found = reasons.get(span.citation.path)
        why = f" ({'; '.join(found)})" if found else ""
        lines.append(f"{n}. {span.citation.label()}{label}{why}")
        lines.extend(f"   {num}| {body[:160]}" for num, body in span.key_lines)
    lines.append("")
    lines.append(_summary(spans))
    return "\n".join(lines)


def _summary(spans: list[Span]) -> str:
    top = spans[0]
    what = f"`{top.symbol}` in " if top.symbol else ""
    summary = f"Start at {what}{top.citation.label()}"
    others = [s.citation.path for s in spans[1:3] if s.citation.path != top.citation.path]
    if others:
        summary += f"; related code is in {', '.join(dict.fromkeys(others))}"
    return summary + "."


def _step(tool: str, args: dict[str, Any], paths: list[str], ok: bool = True) -> dict[str, Any]:
    return {"tool": tool, "args": args, "paths": paths, "ok": ok}
