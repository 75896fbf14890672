"""The Distiller: from one finished session to a diagnosis, tags on map entries, and candidates.

Candidates are context knowledge that transfers to other questions on the same corpus (where
things are, how it is organised, pitfalls), never the answer to this question. Two
implementations share one interface: `DeterministicDistiller` (no model) and `LLMDistiller`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from peek.contextmap.errors import MapError
from peek.contextmap.freshness import CorpusView, SymbolSpan, is_outdated
from peek.contextmap.model import (
    MAX_ENTRY_CHARS,
    SECTIONS,
    Anchor,
    ContextMap,
    Entry,
    Tag,
    section_slug,
)
from peek.contextmap.render import render_entries
from peek.contextmap.trajectory import Trajectory
from peek.llmjson import JSONModel, complete_validated
from peek.text import CODE_TALK, NAME, STOPWORDS

log = logging.getLogger("peek.contextmap.distiller")


@dataclass(frozen=True)
class Candidate:
    """Knowledge proposed for the map: a section, one line of text, and its evidence in code."""

    section: str
    text: str
    anchors: tuple[Anchor, ...] = ()


@dataclass(frozen=True)
class Distillation:
    """What the Distiller read from a session; `error` set means it failed and nothing applies."""

    diagnosis: str
    tags: Mapping[str, Tag] = field(default_factory=dict)
    candidates: tuple[Candidate, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the distillation can be applied."""
        return self.error is None


class Distiller(Protocol):
    """Reads a trajectory against the current map."""

    def distill(self, trajectory: Trajectory, cmap: ContextMap, view: CorpusView) -> Distillation:
        """Diagnose the session, tag the entries it touched, propose transferable knowledge."""
        ...


# ------------------------------------------------------------------ deterministic

_NOT_CONCEPTS = STOPWORDS | CODE_TALK  # an entry's concept words leave out both
_MENTION = re.compile(r"\b([a-z]{2}-\d{5,})\b")


@dataclass(frozen=True)
class FileEvidence:
    """A file that answered the question or was edited, with the cited lines if any."""

    path: str
    start_line: int | None = None
    end_line: int | None = None
    edited: bool = False


def salient_terms(question: str, known_names: Iterable[str] = (), limit: int = 4) -> list[str]:
    """The question's content words, identifier-like ones first, kept in question order."""
    names = {n.lower() for n in known_names}
    words: dict[str, str] = {}
    for w in NAME.findall(question):
        if len(w) >= 3 and w.lower() not in _NOT_CONCEPTS and w.lower() not in words:
            words[w.lower()] = w
    ranked = sorted(words.values(), key=lambda w: not _identifier_like(w, names))
    chosen = set(ranked[:limit])
    return [w for w in words.values() if w in chosen]


def _identifier_like(word: str, names: set[str]) -> bool:
    return ("_" in word or "." in word or word.lower() in names
            or any(c.isupper() for c in word[1:]))


def mentioned_ids(trajectory: Trajectory) -> set[str]:
    """Map ids the agent quoted in its answer or tool arguments: entries it evidently used."""
    text = trajectory.answer + " " + " ".join(json.dumps(s.args) for s in trajectory.steps)
    return set(_MENTION.findall(text))


class DeterministicDistiller:
    """No model: the files that answered or were edited become a concept-to-location entry."""

    def __init__(self, max_files: int = 3, max_terms: int = 4, max_symbols: int = 2) -> None:
        self.max_files = max_files
        self.max_terms = max_terms
        self.max_symbols = max_symbols

    def distill(self, trajectory: Trajectory, cmap: ContextMap, view: CorpusView) -> Distillation:
        """Tags from anchors the session read; one roadmap candidate from its evidence."""
        view.prefetch(self._all_paths(trajectory, cmap, view))
        evidence = self.evidence(trajectory, view)
        touched = {view.normalize(p) for s in trajectory.steps for p in s.paths}
        tags = self.tags(trajectory, cmap, view, evidence, touched | {e.path for e in evidence})
        failed = trajectory.outcome.success is False
        candidates = () if failed else self.candidates(trajectory, evidence, view)
        return Distillation(diagnose(trajectory, evidence, tags), tags, candidates)

    def evidence(self, trajectory: Trajectory, view: CorpusView) -> list[FileEvidence]:
        """What the session found: the edited files when the outcome names them (with the
        lines cited in them), else the cited files, else read files the answer names."""
        cited: dict[str, FileEvidence] = {}
        for c in trajectory.citations:
            p, old = view.normalize(c.path), cited.get(view.normalize(c.path))
            start = c.start_line if old is None or old.start_line is None else min(
                old.start_line, c.start_line)
            end = c.end_line if old is None or old.end_line is None else max(
                old.end_line, c.end_line)
            cited[p] = FileEvidence(p, start, end)
        edited = [view.normalize(f) for f in trajectory.outcome.edited_files]
        found = {p: replace(cited.get(p, FileEvidence(p)), edited=True) for p in edited} or cited
        if not found:
            found = {p: FileEvidence(p) for p in _answer_named_paths(trajectory, view)}
        real = [e for e in found.values() if e.path and view.current_blob(e.path) is not None]
        return real[: self.max_files]

    def tags(self, trajectory: Trajectory, cmap: ContextMap, view: CorpusView,
             evidence: list[FileEvidence], touched: set[str]) -> dict[str, Tag]:
        """Stale for touched entries whose code changed; otherwise only entries this session
        used (named, or sharing the question's words) get a tag: helpful when their anchors
        hold the evidence, harmful on failure. Being named is not evidence for an anchored
        entry (an offline answer names the entries that ranked its own citations)."""
        mentioned = mentioned_ids(trajectory)
        words = {w.lower() for w in salient_terms(trajectory.question, limit=12)}
        answered = {e.path for e in evidence}
        failed = trajectory.outcome.success is False
        tags: dict[str, Tag] = {}
        for entry in cmap.ordered():
            paths = {a.path for a in entry.anchors}
            seen = bool(paths & touched) or entry.id in mentioned
            if seen and entry.anchors and is_outdated(entry, view):
                tags[entry.id] = "stale"  # a fact about the code, whatever the question
                continue
            if not (entry.id in mentioned or (seen and words & _entry_words(entry))):
                continue
            if failed:
                tags[entry.id] = "harmful"
            elif paths & answered or (entry.id in mentioned and not paths):
                tags[entry.id] = "helpful"
            else:
                tags[entry.id] = "neutral"
        return tags

    def candidates(self, trajectory: Trajectory, evidence: list[FileEvidence],
                   view: CorpusView) -> tuple[Candidate, ...]:
        """One CONTEXT ROADMAP line: the question's salient terms -> the files and symbols."""
        if not evidence:
            return ()
        names = [s.name for e in evidence for s in view.symbols(e.path)]
        terms = salient_terms(trajectory.question, names, self.max_terms)
        spans = {e.path: self._symbols_for(e, terms, view) for e in evidence}
        if not terms:
            terms = list(dict.fromkeys(s.qualname for ss in spans.values() for s in ss))[:2]
        if not terms:
            return ()
        locations = "; ".join(_location(e, spans[e.path]) for e in evidence)
        anchors = tuple(_anchor(e, view) for e in evidence)
        text = f"{', '.join(terms)}: {locations}"
        return (Candidate("cr", text[:MAX_ENTRY_CHARS], anchors),)

    def _symbols_for(self, ev: FileEvidence, terms: list[str],
                     view: CorpusView) -> list[SymbolSpan]:
        symbols = view.symbols(ev.path)
        if ev.start_line is not None and ev.end_line is not None:
            lo, hi = ev.start_line, ev.end_line
            hits = [s for s in symbols if s.start_line <= hi and lo <= s.end_line]
            hits.sort(key=lambda s: (s.end_line - s.start_line, s.start_line))
        else:
            lowered = [t.lower() for t in terms]
            hits = [s for s in symbols if any(_name_matches(s.name, t) for t in lowered)]
        chosen: list[SymbolSpan] = []
        for s in hits:
            if not any(c.qualname == s.qualname or c.qualname.startswith(s.qualname + ".")
                       for c in chosen):
                chosen.append(s)
        return chosen[: self.max_symbols]

    @staticmethod
    def _all_paths(trajectory: Trajectory, cmap: ContextMap, view: CorpusView) -> set[str]:
        paths = {view.normalize(p) for s in trajectory.steps for p in s.paths}
        paths |= {view.normalize(c.path) for c in trajectory.citations}
        paths |= {view.normalize(p) for p in trajectory.outcome.edited_files}
        return paths | {a.path for e in cmap.entries.values() for a in e.anchors}


def _entry_words(entry: Entry) -> set[str]:
    return {w.lower() for w in NAME.findall(entry.text) if len(w) >= 3}


def _name_matches(name: str, term: str) -> bool:
    low = name.lower()
    return len(low) >= 3 and (term in low or low in term)


def _answer_named_paths(trajectory: Trajectory, view: CorpusView) -> list[str]:
    paths = [view.normalize(p) for s in trajectory.steps if s.ok for p in s.paths]
    return [p for p in dict.fromkeys(paths) if p and p in trajectory.answer]


def _location(ev: FileEvidence, symbols: list[SymbolSpan]) -> str:
    lines = f":{ev.start_line}-{ev.end_line}" if ev.start_line is not None else ""
    names = f" ({', '.join(s.qualname for s in symbols)})" if symbols else ""
    return f"{ev.path}{lines}{names}"


def _anchor(ev: FileEvidence, view: CorpusView) -> Anchor:
    blob = view.current_blob(ev.path) or ""
    start = ev.start_line or 1
    end = ev.end_line or view.line_count(ev.path)
    return Anchor(ev.path, start, max(start, end), blob)


def diagnose(trajectory: Trajectory, evidence: list[FileEvidence], tags: Mapping[str, Tag]) -> str:
    """How the session spent its steps: failures, steps before first evidence, tags given."""
    steps = trajectory.steps
    failed = sum(not s.ok for s in steps)
    paths = {e.path for e in evidence}
    first = next((i for i, s in enumerate(steps, 1) if paths & set(s.paths)), None)
    parts = [f"{len(steps)} steps ({failed} failed)"]
    if first is not None:
        parts.append(f"{first - 1} orientation steps before the first evidence file")
    parts.append(f"evidence: {', '.join(sorted(paths))}" if paths else "no file evidence")
    if trajectory.outcome.success is not None:
        parts.append("succeeded" if trajectory.outcome.success else "failed")
    counts = {t: sum(1 for v in tags.values() if v == t) for t in sorted(set(tags.values()))}
    if counts:
        parts.append("tags: " + ", ".join(f"{n} {t}" for t, n in counts.items()))
    return "; ".join(parts)


# ------------------------------------------------------------------ LLM

DISTILLER_SYSTEM = """\
You are the Distiller of PEEK, the cache policy that maintains a context map: a small, \
token-budgeted orientation cache for ONE corpus (a code repository or a folder of documents). \
The map is put in an agent's system prompt before every question about this corpus.

Read one finished agent session and the current map, then return JSON only, matching the schema:
- "diagnosis": one or two sentences on how the agent spent its steps (orientation work that a \
better map would have saved, dead ends, wrong turns).
- "tags": for each map entry the session used, relied on or contradicted, its id and one tag: \
"helpful" (it led to the answer), "harmful" (it misled the agent), "stale" (it no longer \
matches the corpus), "neutral" (touched, no effect). Use only ids shown in the map.
- "candidates": knowledge that will help with OTHER questions on this corpus: where things \
live (concept -> file and symbol), how the corpus is organised, key entities and schemas, \
constants and conventions, reusable results, pitfalls. Each has a section (one of: {sections}), \
one line of text (at most 60 words) and optional anchors (path, start_line, end_line) for the \
code it describes.
Never put the answer to this particular question in a candidate. Never invent ids."""


class _AnchorOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1)
    start_line: int = Field(ge=1)
    end_line: int = Field(ge=1)


class _TagOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    tag: Literal["helpful", "harmful", "neutral", "stale"]


class _CandidateOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # the enum constrains structured output; the validator still accepts section titles
    section: str = Field(json_schema_extra={"enum": [s.slug for s in SECTIONS]})
    text: str = Field(min_length=1, max_length=MAX_ENTRY_CHARS)
    anchors: list[_AnchorOut] = Field(default_factory=list)

    @field_validator("section")
    @classmethod
    def _known_section(cls, value: str) -> str:
        try:
            return section_slug(value)
        except MapError as exc:
            raise ValueError(str(exc)) from exc


class DistillOutput(BaseModel):
    """The JSON the Distiller model must produce."""

    model_config = ConfigDict(extra="forbid")
    diagnosis: str
    tags: list[_TagOut] = Field(default_factory=list)
    candidates: list[_CandidateOut] = Field(default_factory=list)


def section_list() -> str:
    """Sections as the prompts name them."""
    from peek.contextmap.model import SECTIONS

    return ", ".join(f"{s.slug} = {s.title} ({s.holds})" for s in SECTIONS)


def map_for_prompt(entries: Iterable[Entry]) -> str:
    """The current map as the model sees it: the rendered block, or a note that it is empty."""
    return render_entries(entries) or "(the map is empty)"


STEP_OUTPUT_CHARS = 600
THOUGHT_CHARS = 300


def trajectory_digest(trajectory: Trajectory, max_steps: int = 60) -> str:
    """The whole session for the Distiller, bounded: each call with its output and the model's
    reasoning (truncated), long step lists keeping both ends."""
    steps = list(enumerate(trajectory.steps, 1))
    if len(steps) > max_steps:
        steps = steps[: max_steps // 2] + steps[-max_steps // 2:]
    lines = [f"Question: {trajectory.question}", "Steps:"]
    for i, s in steps:
        if s.thought:
            lines.append(f"{i}. thought: {_clip(s.thought, THOUGHT_CHARS)}")
        args = json.dumps(s.args, ensure_ascii=False)[:300]
        lines.append(f"{i}. {s.tool} {args} paths={s.paths[:8]} ok={s.ok}")
        if s.output:
            lines.append(f"   -> {_clip(s.output, STEP_OUTPUT_CHARS)}")
    lines.append(f"Answer: {trajectory.answer[:2000]}")
    cites = ", ".join(f"{c.path}:{c.start_line}-{c.end_line}" for c in trajectory.citations)
    lines.append(f"Citations: {cites or 'none'}")
    o = trajectory.outcome
    known = "unknown (nobody confirmed this answer)" if o.success is None else o.success
    lines.append(f"Outcome: edited={o.edited_files} success={known}")
    if o.summary:
        lines.append(f"Summary of the change: {_clip(o.summary, 2000)}")
    return "\n".join(lines)


def _clip(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + " …"


class LLMDistiller:
    """The Distiller as a model call, validated with pydantic, repaired once and retried once."""

    def __init__(self, model: JSONModel) -> None:
        self.model = model

    def distill(self, trajectory: Trajectory, cmap: ContextMap, view: CorpusView) -> Distillation:
        """Ask the model; on repeated invalid output return a failed distillation."""
        system = DISTILLER_SYSTEM.format(sections=section_list())
        user = (f"# Current map\n{map_for_prompt(cmap.ordered())}\n\n"
                f"# Session\n{trajectory_digest(trajectory)}")
        result = complete_validated(self.model, system, user, DistillOutput, purpose="distiller")
        if result.value is None:
            return Distillation("", error="distiller: " + " | ".join(result.errors))
        return self._convert(result.value, cmap, view)

    def _convert(self, out: DistillOutput, cmap: ContextMap, view: CorpusView) -> Distillation:
        tags: dict[str, Tag] = {}
        for t in out.tags:
            if t.id in cmap.entries:
                tags[t.id] = t.tag
            else:
                log.warning("distiller tagged unknown entry %s; ignored", t.id)
        candidates = tuple(Candidate(c.section, c.text, _anchors(c.anchors, view))
                           for c in out.candidates)
        return Distillation(out.diagnosis, tags, candidates)


def _anchors(items: list[_AnchorOut], view: CorpusView) -> tuple[Anchor, ...]:
    out = []
    for a in items:
        path = view.normalize(a.path)
        blob = view.current_blob(path)
        if blob is None:
            log.warning("distiller anchored to unknown file %s; anchor dropped", a.path)
            continue
        out.append(Anchor(path, a.start_line, max(a.start_line, a.end_line), blob))
    return tuple(out)
