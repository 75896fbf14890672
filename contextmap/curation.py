"""People correcting the map: pin, unpin, forget, edit, reset, rollback, export and import.

Each correction is one change set (an edit row per entry touched and one version bump), logged
under session "user", and ends with the Evictor so the budget invariant holds after every change.
"""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from peek.contextmap.errors import MapImportError
from peek.contextmap.evictor import Evictor
from peek.contextmap.freshness import CorpusView, is_outdated
from peek.contextmap.model import (
    MAX_ENTRY_CHARS,
    Anchor,
    Entry,
    flatten,
    normalize_text,
    parse_id,
)
from peek.contextmap.store import ChangeSet, MapStore, entries_at, load_map
from peek.db import Database
from peek.errors import QueryError

USER = "user"
EXPORT_FORMAT = "peek-map"
EXPORT_VERSION = 1


def _store(db: Database, corpus_id: int) -> MapStore:
    return MapStore(db, corpus_id)


def _close(cs: ChangeSet, evictor: Evictor | None) -> int:
    (evictor or Evictor()).enforce(cs)
    return cs.finish()


def set_pinned(db: Database, corpus_id: int, entry_id: str, pinned: bool,
               evictor: Evictor | None = None) -> int:
    """Pin (never evicted, never rewritten by the policy) or unpin an entry; returns the version."""
    with _store(db, corpus_id).change(USER) as cs:
        cs.map.get(entry_id)
        cs.update(entry_id, op="PIN" if pinned else "UNPIN", pinned=pinned, reason="by user")
        return _close(cs, evictor)


def forget(db: Database, corpus_id: int, entry_id: str) -> int:
    """Remove an entry the user says is wrong or useless; history keeps it for rollback."""
    with _store(db, corpus_id).change(USER) as cs:
        cs.remove(entry_id, op="FORGET", reason="by user")
        return cs.finish()


def edit_entry(db: Database, corpus_id: int, entry_id: str, text: str,
               root: Path | None = None, evictor: Evictor | None = None) -> int:
    """Rewrite an entry as a person vouches for it now: anchors come from the places the new
    text names (`path:start-end`, symbols), else the old ones re-stamped; past harm is cleared.
    Text over the entry limit is refused: the map would cut a person's words silently."""
    from peek.contextmap.anchors import anchors_from_text

    size = len(flatten(text))
    if size > MAX_ENTRY_CHARS:
        raise QueryError(f"an entry's text is at most {MAX_ENTRY_CHARS} characters, got {size}",
                         "say it shorter, or split it over two entries")

    with _store(db, corpus_id).change(USER) as cs:
        old = cs.map.get(entry_id)
        view = CorpusView(cs.conn, corpus_id, root)
        anchors = anchors_from_text(text, view) or tuple(
            replace(a, blob_sha=view.current_blob(a.path) or a.blob_sha) for a in old.anchors)
        fresh = replace(old, anchors=anchors)
        cs.update(entry_id, op="EDIT", text=text, anchors=anchors, harmful=0, stale=0,
                  updated_step=cs.map.state.updates, outdated=is_outdated(fresh, view),
                  reason="by user")
        return _close(cs, evictor)


def reset(db: Database, corpus_id: int) -> int:
    """Empty the map and restart its evolve steps; the log keeps everything for rollback."""
    with _store(db, corpus_id).change(USER) as cs:
        for entry_id in sorted(cs.map.entries):
            cs.remove(entry_id, op="RESET", reason="by user")
        cs.set_state(op="RESET", updates=0, frozen=False, reason="by user")
        return cs.finish()


def rollback(db: Database, corpus_id: int, version: int, evictor: Evictor | None = None) -> int:
    """Make the entries what they were at `version`, as a new version (rollback is undoable)."""
    with _store(db, corpus_id).change(USER) as cs:
        target = entries_at(cs.conn, corpus_id, version)
        _become(cs, target, op="ROLLBACK", reason=f"rollback to v{version}")
        return _close(cs, evictor)


def _become(cs: ChangeSet, target: dict[str, Entry], op: str, reason: str) -> None:
    """Edit the change set's entries until they equal `target`."""
    for entry_id in sorted(cs.map.entries.keys() - target.keys()):
        cs.remove(entry_id, op=op, reason=reason)
    for entry_id, entry in sorted(target.items()):
        if entry_id not in cs.map.entries:
            cs.put(entry, op=op, reason=reason)
        elif cs.map.entries[entry_id] != entry:
            values = {f.name: getattr(entry, f.name) for f in fields(Entry) if f.name != "id"}
            cs.update(entry_id, op=op, reason=reason, **values)


def export_map(db: Database, corpus_id: int, corpus: str) -> dict[str, Any]:
    """The map as a JSON document that `import_map` restores exactly (ids, counters, pins)."""
    with db.read() as conn:
        cmap = load_map(conn, corpus_id)
    s = cmap.state
    return {"format": EXPORT_FORMAT, "format_version": EXPORT_VERSION, "corpus": corpus,
            "version": s.version, "budget_tokens": s.budget_tokens,
            "evolve_steps": s.evolve_steps, "updates": s.updates, "frozen": s.frozen,
            "entries": [e.to_dict() for e in cmap.ordered()]}


class _AnchorIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    path: str = Field(min_length=1)
    start_line: int = Field(ge=1)
    end_line: int = Field(ge=1)
    blob_sha: str


class _EntryIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    section: str
    text: str = Field(min_length=1)
    helpful: int = Field(default=0, ge=0)
    harmful: int = Field(default=0, ge=0)
    stale: int = Field(default=0, ge=0)
    uses: int = Field(default=0, ge=0)
    created_step: int = Field(default=0, ge=0)
    updated_step: int = Field(default=0, ge=0)
    pinned: bool = False
    outdated: bool = False
    anchors: list[_AnchorIn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _id_matches_section(self) -> _EntryIn:
        parsed = parse_id(self.id)
        if parsed is None or parsed[0] != self.section:
            raise ValueError(f"id {self.id!r} is not <section slug>-<5 digits> of {self.section!r}")
        return self

    def entry(self) -> Entry:
        """The validated entry, its text normalized like any other."""
        data = self.model_dump(exclude={"anchors"})
        data["text"] = normalize_text(self.text)
        anchors = tuple(Anchor(**a.model_dump()) for a in self.anchors)
        return Entry(**data, anchors=anchors)


class _MapFile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    format: Literal["peek-map"]
    format_version: Literal[1]
    entries: list[_EntryIn]


def parse_export(raw: str, source: str = "map file") -> list[Entry]:
    """Validate an exported map, with one clear error for bad JSON, format or entries."""
    try:
        parsed = _MapFile.model_validate(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise MapImportError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}",
                             "give a file written by: peek map export") from exc
    except RecursionError as exc:  # [[[[...]]]] deeper than the parser's stack
        raise MapImportError(f"{source} is not valid JSON: nested too deeply",
                             "give a file written by: peek map export") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "the file"
        raise MapImportError(f"{source} is not a peek map export: {where}: {err['msg']}",
                             "give a file written by: peek map export") from exc
    entries = [e.entry() for e in parsed.entries]
    ids = [e.id for e in entries]
    if len(set(ids)) != len(ids):
        raise MapImportError(f"{source} has duplicate entry ids", "each id must appear once")
    return entries


def import_map(db: Database, corpus_id: int, entries: list[Entry],
               evictor: Evictor | None = None) -> int:
    """Replace the map's entries with imported ones (ids kept), then enforce the budget."""
    with _store(db, corpus_id).change(USER) as cs:
        _become(cs, {e.id: e for e in entries}, op="IMPORT", reason="imported by user")
        return _close(cs, evictor)
