"""The Cartographer: turn a distillation into edits (ADD, REPLACE, DELETE) without twins.

Its job is deduplication and keeping the map tidy: a candidate that covers the same code
(overlapping anchors) or says nearly the same thing (word overlap) as an existing entry of its
section is merged into that entry as a REPLACE instead of being added again. Ids of new entries
come from the store, never from here or from a model. Pinned entries belong to people and are
never replaced or deleted by the policy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from peek.contextmap.distiller import (
    Candidate,
    Distillation,
    map_for_prompt,
    section_list,
)
from peek.contextmap.errors import MapError
from peek.contextmap.model import MAX_ENTRY_CHARS, SECTIONS, Anchor, ContextMap, section_slug
from peek.llmjson import JSONModel, complete_validated
from peek.text import word_set

log = logging.getLogger("peek.contextmap.cartographer")
Op = Literal["ADD", "REPLACE", "DELETE"]
SIMILAR = 0.6  # word-set Jaccard at which two entries of a section say the same thing
DUPLICATE = 0.9  # near-identical: a model's ADD this close to an entry is dropped
MAX_TERMS = 5
MAX_LOCATIONS = 3


@dataclass(frozen=True)
class PlannedEdit:
    """One edit to apply; `anchors` None on REPLACE keeps the entry's anchors."""

    op: Op
    entry_id: str | None
    section: str
    text: str
    anchors: tuple[Anchor, ...] | None
    reason: str


@dataclass(frozen=True)
class Cartography:
    """The planned edits, or an error (then nothing is applied)."""

    edits: tuple[PlannedEdit, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the plan can be applied."""
        return self.error is None


class Cartographer(Protocol):
    """Plans edits from a distillation and the current map."""

    def plan(self, distillation: Distillation, cmap: ContextMap) -> Cartography:
        """Edits that merge the candidates into the map and drop what proved harmful."""
        ...


def words(text: str) -> set[str]:
    """Lower-case word set, for similarity."""
    return word_set(text)


def similarity(a: str, b: str) -> float:
    """Jaccard overlap of word sets: cheap and good enough to spot rephrased twins."""
    wa, wb = words(a), words(b)
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


def anchors_overlap(a: Iterable[Anchor], b: Iterable[Anchor]) -> bool:
    """Whether two anchor sets share lines of a file."""
    bs = list(b)
    return any(x.overlaps(y) for x in a for y in bs)


@dataclass(frozen=True)
class Draft:
    """An entry as the plan would leave it: existing (entry_id set) or new."""

    section: str
    text: str
    anchors: tuple[Anchor, ...]
    entry_id: str | None = None
    pinned: bool = False
    changed: bool = False


def find_twin(candidate: Candidate, drafts: dict[str, Draft]) -> str | None:
    """The draft a candidate duplicates: anchor overlap first, else the most similar text."""
    same = {k: d for k, d in drafts.items() if d.section == candidate.section}
    for key, d in same.items():
        if candidate.anchors and anchors_overlap(candidate.anchors, d.anchors):
            return key
    scored = [(similarity(candidate.text, d.text), key) for key, d in same.items()]
    best = max(scored, default=(0.0, ""))
    return best[1] if best[0] >= SIMILAR else None


def _structured(text: str) -> tuple[list[str], list[str]] | None:
    """Split a `terms: location; location` line, or None if the text is not of that form."""
    head, sep, tail = text.partition(": ")
    if not sep:
        return None
    locations = [loc.strip() for loc in tail.split("; ") if loc.strip()]
    if not locations or not all(("/" in loc.split(" ")[0] or "." in loc.split(" ")[0])
                                for loc in locations):
        return None
    return [t.strip() for t in head.split(",") if t.strip()], locations


def _loc_path(location: str) -> str:
    return location.split(" ")[0].split(":")[0]


def merge_text(old: str, new: str) -> str:
    """One line that keeps both: union of terms and locations, or the newer, fuller statement."""
    po, pn = _structured(old), _structured(new)
    if po and pn:
        terms = list({t.lower(): t for t in po[0] + pn[0]}.values())[:MAX_TERMS]
        by_path = {_loc_path(loc): loc for loc in po[1]}
        by_path.update({_loc_path(loc): loc for loc in pn[1]})
        locations = list(by_path.values())[-MAX_LOCATIONS:]
        return f"{', '.join(terms)}: {'; '.join(locations)}"[:MAX_ENTRY_CHARS]
    if new.lower() in old.lower():
        return old
    return new


def merge_anchors(old: tuple[Anchor, ...], new: tuple[Anchor, ...]) -> tuple[Anchor, ...]:
    """Anchors of both, the newer ones winning for a file (they carry the current blob)."""
    by_path = {a.path: a for a in old}
    by_path.update({a.path: a for a in new})
    return tuple(by_path.values())[-MAX_LOCATIONS:]


def merge(draft: Draft, candidate: Candidate) -> Draft:
    """The draft with a candidate folded in; `changed` says whether anything moved."""
    text = merge_text(draft.text, candidate.text)
    anchors = merge_anchors(draft.anchors, candidate.anchors)
    if text == draft.text and anchors == draft.anchors:
        return draft
    return replace(draft, text=text, anchors=anchors, changed=True)


def drafts_of(cmap: ContextMap) -> dict[str, Draft]:
    """Every live entry as a draft, keyed by id."""
    return {e.id: Draft(e.section, e.text, e.anchors, e.id, e.pinned)
            for e in cmap.ordered()}


class DeterministicCartographer:
    """Merges candidates into twins, adds the rest, deletes entries that keep misleading."""

    def __init__(self, harmful_margin: int = 2) -> None:
        self.harmful_margin = harmful_margin

    def plan(self, distillation: Distillation, cmap: ContextMap) -> Cartography:
        """DELETEs for repeatedly harmful entries, then REPLACE-merges and ADDs."""
        deletions = self.deletions(distillation, cmap)
        doomed = {d.entry_id for d in deletions}
        drafts = {k: d for k, d in drafts_of(cmap).items() if k not in doomed}
        for i, candidate in enumerate(distillation.candidates):
            self.place(candidate, drafts, f"+{i}")
        return Cartography((*deletions, *_edits_from(drafts)))

    def deletions(self, distillation: Distillation, cmap: ContextMap) -> list[PlannedEdit]:
        """Unpinned entries tagged harmful whose harm now exceeds their help by the margin."""
        out = []
        for entry_id, tag in sorted(distillation.tags.items()):
            e = cmap.entries.get(entry_id)
            if tag == "harmful" and e and not e.pinned and (
                    e.harmful + 1 - e.helpful >= self.harmful_margin):
                out.append(PlannedEdit("DELETE", e.id, e.section, e.text, None,
                                       "misled sessions more often than it helped"))
        return out

    @staticmethod
    def place(candidate: Candidate, drafts: dict[str, Draft], new_key: str) -> None:
        """Merge a candidate into its twin, or add it as a new draft."""
        key = find_twin(candidate, drafts)
        if key is None:
            drafts[new_key] = Draft(candidate.section, candidate.text, candidate.anchors,
                                    changed=True)
        elif drafts[key].pinned:
            log.info("candidate duplicates pinned entry %s; left to its owner", key)
        else:
            drafts[key] = merge(drafts[key], candidate)


def _edits_from(drafts: dict[str, Draft]) -> list[PlannedEdit]:
    out = []
    for d in drafts.values():
        if not d.changed:
            continue
        if d.entry_id is None:
            out.append(PlannedEdit("ADD", None, d.section, d.text, d.anchors, "new knowledge"))
        else:
            out.append(PlannedEdit("REPLACE", d.entry_id, d.section, d.text, d.anchors,
                                   "merged a twin candidate"))
    return out


# ------------------------------------------------------------------ LLM

CARTOGRAPHER_SYSTEM = """\
You are the Cartographer of PEEK, the cache policy that maintains a context map: a small, \
token-budgeted orientation cache for ONE corpus, put in an agent's system prompt before every \
question. Turn the Distiller's diagnosis, tags and candidates into edits of the map. Return \
JSON only, matching the schema: {{"edits": [...]}} where each edit is one of
- {{"op": "ADD", "section": ..., "text": ..., "candidate": i, "reason": ...}}
- {{"op": "REPLACE", "id": ..., "text": ..., "candidate": i or null, "reason": ...}}
- {{"op": "DELETE", "id": ..., "reason": ...}}
Rules: merge a candidate that duplicates or refines an existing entry into a REPLACE of that \
entry instead of adding a twin; DELETE entries that are wrong or harmful; keep only \
transferable, context-level knowledge (no answers to specific questions); one line per entry, \
at most 60 words. "candidate" is the index of the candidate whose code anchors the entry \
keeps. Never write an id on ADD: ids are assigned by the system. Sections: {sections}."""


class EditOut(BaseModel):
    """One edit as the Cartographer model must write it."""

    model_config = ConfigDict(extra="forbid")
    op: Op
    id: str | None = None
    section: str | None = Field(
        default=None, json_schema_extra={"enum": [*(s.slug for s in SECTIONS), None]}
    )
    text: str | None = Field(default=None, min_length=1, max_length=MAX_ENTRY_CHARS)
    candidate: int | None = None
    reason: str = ""

    @field_validator("section")
    @classmethod
    def _known_section(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return section_slug(value)
        except MapError as exc:
            raise ValueError(str(exc)) from exc

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> EditOut:
        ctx: dict[str, Any] = info.context or {}
        ids, n = ctx.get("ids", set()), ctx.get("candidates", 0)
        if self.op == "ADD":
            if self.id is not None:
                raise ValueError("ids are assigned by the system: omit id on ADD")
            if self.section is None or self.text is None:
                raise ValueError("ADD needs section and text")
        elif self.id not in ids:
            raise ValueError(f"{self.op} needs the id of an existing entry, got {self.id!r}")
        if self.op == "REPLACE" and self.text is None:
            raise ValueError("REPLACE needs text")
        if self.candidate is not None and not 0 <= self.candidate < n:
            raise ValueError(f"candidate must index the {n} candidates")
        return self


class CartographerOutput(BaseModel):
    """The JSON the Cartographer model must produce."""

    model_config = ConfigDict(extra="forbid")
    edits: list[EditOut] = Field(default_factory=list)


def candidates_for_prompt(distillation: Distillation) -> str:
    """Numbered candidates with the files they cite."""
    lines = []
    for i, c in enumerate(distillation.candidates):
        where = ", ".join(f"{a.path}:{a.start_line}-{a.end_line}" for a in c.anchors)
        lines.append(f"{i}. [{c.section}] {c.text}" + (f" (anchors: {where})" if where else ""))
    return "\n".join(lines) or "(none)"


class LLMCartographer:
    """The Cartographer as a model call; ids are checked, twins and pinned targets filtered."""

    def __init__(self, model: JSONModel) -> None:
        self.model = model

    def plan(self, distillation: Distillation, cmap: ContextMap) -> Cartography:
        """Ask the model for edits; on repeated invalid output return a failed plan."""
        system = CARTOGRAPHER_SYSTEM.format(sections=section_list())
        tags = ", ".join(f"{k}={v}" for k, v in sorted(distillation.tags.items())) or "(none)"
        user = (f"# Current map\n{map_for_prompt(cmap.ordered())}\n\n"
                f"# Diagnosis\n{distillation.diagnosis}\n\n# Tags\n{tags}\n\n"
                f"# Candidates\n{candidates_for_prompt(distillation)}")
        context = {"ids": set(cmap.entries), "candidates": len(distillation.candidates)}
        result = complete_validated(self.model, system, user, CartographerOutput, context,
                                    purpose="cartographer")
        if result.value is None:
            return Cartography(error="cartographer: " + " | ".join(result.errors))
        return Cartography(tuple(self._convert(result.value, distillation, cmap)))

    def _convert(self, out: CartographerOutput, distillation: Distillation,
                 cmap: ContextMap) -> list[PlannedEdit]:
        drafts = drafts_of(cmap)
        edits = []
        for e in out.edits:
            anchors = (distillation.candidates[e.candidate].anchors
                       if e.candidate is not None else None)
            edit = self._edit(e, anchors, cmap)
            if edit is not None and not _is_duplicate(edit, drafts):
                edits.append(edit)
        return edits

    @staticmethod
    def _edit(e: EditOut, anchors: tuple[Anchor, ...] | None,
              cmap: ContextMap) -> PlannedEdit | None:
        if e.op == "ADD":
            return PlannedEdit("ADD", None, e.section or "cu", e.text or "", anchors or (),
                               e.reason)
        target = cmap.entries[e.id or ""]
        if target.pinned:
            log.info("cartographer %s of pinned entry %s skipped", e.op, target.id)
            return None
        return PlannedEdit(e.op, target.id, target.section, e.text or target.text, anchors,
                           e.reason)


def _is_duplicate(edit: PlannedEdit, drafts: dict[str, Draft]) -> bool:
    if edit.op != "ADD":
        return False
    twins = [d for d in drafts.values()
             if d.section == edit.section and similarity(d.text, edit.text) >= DUPLICATE]
    if twins:
        log.info("cartographer ADD duplicates an existing entry; dropped: %s", edit.text)
    return bool(twins)
