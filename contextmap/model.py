"""The context map's data model: sections, entries with system-assigned ids, anchors, state.

Sections. The first five follow the PEEK paper's example map and its authors' section list
(Context Roadmap, Context Understanding, Domain Constants, Parsing Schemas, Reusable Results;
"entities, constants, and schemas have historically been useful"), with Parsing Schemas widened
to ENTITIES AND SCHEMAS because a code corpus has types and config formats rather than record
layouts. PITFALLS is added for code: the Distiller's diagnosis names dead ends and misleading
places, and ACE's "common mistakes" section shows that such negative knowledge transfers across
questions. CONTEXT ROADMAP comes first because "where is X" is the most common orientation need.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from peek.contextmap.errors import EntryNotFoundError, MapError

Tag = Literal["helpful", "harmful", "neutral", "stale"]
DEFAULT_BUDGET = 1024
MAX_ENTRY_CHARS = 600
ID_PATTERN = re.compile(r"^([a-z]{2})-(\d{5,})$")


@dataclass(frozen=True)
class Section:
    """One heading of the map: a two-letter slug (the id prefix), a title and what belongs in it."""

    slug: str
    title: str
    holds: str


SECTIONS: tuple[Section, ...] = (
    Section("cr", "CONTEXT ROADMAP", "where things are: layout, concept -> file and symbol"),
    Section("cu", "CONTEXT UNDERSTANDING", "what the corpus is, how it is organised, what matters"),
    Section("es", "ENTITIES AND SCHEMAS", "key types, data formats, config and record schemas"),
    Section("dc", "DOMAIN CONSTANTS", "names, flags, magic values and conventions"),
    Section("rr", "REUSABLE RESULTS", "results worth reusing: lists, counts, mappings found"),
    Section("pf", "PITFALLS", "dead ends and misleading places that cost past sessions time"),
)
SECTION_BY_SLUG = {s.slug: s for s in SECTIONS}
SECTION_ORDER = {s.slug: i for i, s in enumerate(SECTIONS)}


def section_slug(name: str) -> str:
    """The slug for a slug or a title in any case, so models and people can name either."""
    key = " ".join(name.replace("_", " ").split()).upper()
    for s in SECTIONS:
        if key in (s.slug.upper(), s.title):
            return s.slug
    known = ", ".join(f"{s.slug} ({s.title})" for s in SECTIONS)
    raise MapError(f"unknown map section {name!r}", f"use one of: {known}")


def make_id(slug: str, number: int) -> str:
    """The stable id of the `number`-th entry ever added to a section."""
    return f"{slug}-{number:05d}"


def parse_id(entry_id: str) -> tuple[str, int] | None:
    """Slug and number of a well-formed id, or None, to validate ids from files and people."""
    m = ID_PATTERN.match(entry_id)
    if m is None or m.group(1) not in SECTION_BY_SLUG:
        return None
    return m.group(1), int(m.group(2))


def flatten(text: str) -> str:
    """One line, single spaces: how an entry's text is stored and rendered."""
    return " ".join(text.split())


def normalize_text(text: str) -> str:
    """One line, single spaces, capped: an entry is one `[id] text` line of the rendered map."""
    flat = flatten(text)
    if len(flat) > MAX_ENTRY_CHARS:
        flat = flat[: MAX_ENTRY_CHARS - 1].rstrip() + "\u2026"
    return flat


@dataclass(frozen=True)
class Anchor:
    """Evidence in code: a line span of a file at a given blob, so staleness can be detected."""

    path: str
    start_line: int
    end_line: int
    blob_sha: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form, as stored in the entries table and exports."""
        return {"path": self.path, "start_line": self.start_line,
                "end_line": self.end_line, "blob_sha": self.blob_sha}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Anchor:
        """Inverse of `to_dict`."""
        return cls(str(data["path"]), int(data["start_line"]), int(data["end_line"]),
                   str(data["blob_sha"]))

    def overlaps(self, other: Anchor) -> bool:
        """Same file and intersecting lines: the evidence Cartographer uses to spot twins."""
        return (self.path == other.path and self.start_line <= other.end_line
                and other.start_line <= self.end_line)


@dataclass(frozen=True)
class Entry:
    """One map item; counters feed the Evictor's score, anchors feed the freshness check."""

    id: str
    section: str
    text: str
    helpful: int = 0
    harmful: int = 0
    stale: int = 0
    uses: int = 0
    created_step: int = 0
    updated_step: int = 0
    pinned: bool = False
    outdated: bool = False
    anchors: tuple[Anchor, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form, used by the edit log, exports and `--json` output."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["anchors"] = [a.to_dict() for a in self.anchors]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        """Inverse of `to_dict`; unknown keys are ignored so old logs stay readable."""
        return cls(id=str(data["id"]), section=str(data["section"]), text=str(data["text"]),
                   **decode_fields({k: v for k, v in data.items()
                                    if k not in ("id", "section", "text")}))

    def delta(self, other: Entry) -> tuple[dict[str, Any], dict[str, Any]]:
        """The fields that differ, as (mine, theirs) partial dicts for a compact edit log."""
        mine, theirs = self.to_dict(), other.to_dict()
        keys = [k for k in mine if mine[k] != theirs[k]]
        return {k: mine[k] for k in keys}, {k: theirs[k] for k in keys}

    def patched(self, partial: dict[str, Any]) -> Entry:
        """This entry with some fields replaced from a partial dict (the inverse of `delta`)."""
        return replace(self, **decode_fields(partial))


_ENTRY_FIELDS = {f.name for f in fields(Entry)}
_BOOL_FIELDS = {"pinned", "outdated"}


def decode_fields(partial: dict[str, Any]) -> dict[str, Any]:
    """Turn JSON values of entry fields back into their Python types."""
    out: dict[str, Any] = {}
    for key, value in partial.items():
        if key not in _ENTRY_FIELDS:
            continue
        if key == "anchors":
            out[key] = tuple(Anchor.from_dict(a) for a in value)
        elif key in _BOOL_FIELDS:
            out[key] = bool(value)
        elif key in ("id", "section", "text"):
            out[key] = str(value)
        else:
            out[key] = int(value)
    return out


@dataclass(frozen=True)
class MapState:
    """Per-corpus policy state: version, budget B, evolve steps m, updates so far, frozen."""

    version: int = 0
    budget_tokens: int = DEFAULT_BUDGET
    evolve_steps: int | None = None
    updates: int = 0
    frozen: bool = False
    seeded: bool = False
    next_ids: dict[str, int] = field(default_factory=dict)

    def next_id(self, slug: str) -> int:
        """The number the next entry of this section gets (ids are never reused)."""
        return self.next_ids.get(slug, 1)


def sort_key(entry: Entry) -> tuple[int, str]:
    """Render order: section order, then id (creation order inside a section)."""
    return SECTION_ORDER.get(entry.section, len(SECTIONS)), entry.id


@dataclass
class ContextMap:
    """A map as loaded from the store: its state and its live entries by id."""

    state: MapState = field(default_factory=MapState)
    entries: dict[str, Entry] = field(default_factory=dict)

    def ordered(self) -> list[Entry]:
        """Entries in render order."""
        return sorted(self.entries.values(), key=sort_key)

    def get(self, entry_id: str) -> Entry:
        """The entry with this id, or a clear error naming the ids that exist."""
        entry = self.entries.get(entry_id)
        if entry is None:
            raise EntryNotFoundError(f"the map has no entry {entry_id!r}",
                                     "list the ids with: peek map show <path>")
        return entry
