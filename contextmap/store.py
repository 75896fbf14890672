"""The versioned map store: one map per corpus, every change an edit row and a version bump.

A change set is one write transaction. All its edit rows share the new version, so a version is
a state the map was really in (an update is never seen half-applied). Edit rows keep what is
needed to undo them: the full entry for additions and removals, the changed fields otherwise.
That makes `entries_at(V)` (for diff and rollback) a walk back through the log from the current
entries, and keeps the log small enough for thousands of updates.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from peek.contextmap.errors import MapError, VersionError
from peek.contextmap.model import (
    Anchor,
    ContextMap,
    Entry,
    MapState,
    make_id,
    normalize_text,
    parse_id,
)
from peek.db import Database, driver
from peek.packed import pack_text, unpack_json

if TYPE_CHECKING:
    from peek.db import AnyConnection

_STATE_FIELDS = ("budget_tokens", "evolve_steps", "updates", "frozen", "seeded")
_ENTRY_COLUMNS = ("id", "section", "text", "helpful", "harmful", "stale", "uses",
                  "created_step", "updated_step", "pinned", "outdated", "anchors")
_EDIT_COLUMNS = ("version", "op", "entry_id", "before", "after", "session", "reason",
                 "created_at")
# Plain named-parameter SQL: `ask` reads the map and `record` changes it without SQLAlchemy.
_STATE_COLUMNS = ("version", "budget_tokens", "evolve_steps", "updates", "frozen", "seeded",
                  "next_ids")
_SELECT_STATE = f"SELECT {', '.join(_STATE_COLUMNS)} FROM map_state WHERE corpus_id = :cid"
_SELECT_ENTRIES = f"SELECT {', '.join(_ENTRY_COLUMNS)} FROM map_entries WHERE corpus_id = :cid"
#: the corpus root, its map state and entries in one statement (one round trip on a server)
_SELECT_VIEW = (
    f"SELECT c.root, {', '.join('s.' + c for c in _STATE_COLUMNS)}, "
    f"{', '.join('e.' + c for c in _ENTRY_COLUMNS)} FROM corpora c "
    "LEFT JOIN map_state s ON s.corpus_id = c.id LEFT JOIN map_entries e ON e.corpus_id = c.id "
    "WHERE c.id = :cid")
_SELECT_EDITS = (f"SELECT {', '.join(_EDIT_COLUMNS)} FROM map_edits WHERE corpus_id = :cid "
                 "AND version > :low AND version <= :high ORDER BY id")

_ENTRY_KEY = "corpus_id = :cid AND id = :eid"
_INSERT_ENTRY = (f"INSERT INTO map_entries (corpus_id, {', '.join(_ENTRY_COLUMNS)}) "
                 f"VALUES (:corpus_id, {', '.join(':' + c for c in _ENTRY_COLUMNS)})")
_DELETE_ENTRY = f"DELETE FROM map_entries WHERE {_ENTRY_KEY}"
_INSERT_EDIT = (f"INSERT INTO map_edits (corpus_id, {', '.join(_EDIT_COLUMNS)}) "
                f"VALUES (:corpus_id, {', '.join(':' + c for c in _EDIT_COLUMNS)})")
_STATE_VALUES = ("version", *_STATE_FIELDS, "next_ids", "updated_at")
_INSERT_STATE = (f"INSERT INTO map_state (corpus_id, {', '.join(_STATE_VALUES)}) "
                 f"VALUES (:corpus_id, {', '.join(':' + c for c in _STATE_VALUES)})")
_UPDATE_STATE = (f"UPDATE map_state SET {', '.join(f'{c} = :{c}' for c in _STATE_VALUES)} "
                 "WHERE corpus_id = :cid")


def _update_entry(columns: Iterable[str]) -> str:
    """The UPDATE of some columns of one entry (named parameters, the key as cid and eid)."""
    return (f"UPDATE map_entries SET {', '.join(f'{c} = :{c}' for c in columns)} "
            f"WHERE {_ENTRY_KEY}")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _entry_row(corpus_id: int, entry: Entry) -> dict[str, Any]:
    row = entry.to_dict()
    row["anchors"] = _dumps(row["anchors"])
    row["corpus_id"] = corpus_id
    return row


def _row_entry(row: Any) -> Entry:
    data = dict(zip(_ENTRY_COLUMNS, row, strict=True))
    data["anchors"] = json.loads(data["anchors"])
    return Entry.from_dict(data)


def load_state(conn: AnyConnection, corpus_id: int) -> tuple[MapState, bool]:
    """The corpus's map state and whether it is stored yet (a new map has defaults)."""
    row = driver(conn).execute(_SELECT_STATE, {"cid": corpus_id}).fetchone()
    return _row_state(row), row is not None


def _row_state(row: Any) -> MapState:
    if row is None or row[0] is None:
        return MapState()
    version, budget, steps, updates, frozen, seeded, next_ids = row
    return MapState(
        version=version, budget_tokens=budget, evolve_steps=steps, updates=updates,
        frozen=bool(frozen), seeded=bool(seeded),
        next_ids={str(k): int(v) for k, v in json.loads(next_ids).items()},
    )


def load_entries(conn: AnyConnection, corpus_id: int) -> dict[str, Entry]:
    """The live entries of a corpus's map, by id."""
    rows = driver(conn).execute(_SELECT_ENTRIES, {"cid": corpus_id})
    entries = (_row_entry(r) for r in rows)
    return {e.id: e for e in entries}


def load_map(conn: AnyConnection, corpus_id: int) -> ContextMap:
    """State and entries in one consistent read."""
    state, _ = load_state(conn, corpus_id)
    return ContextMap(state, load_entries(conn, corpus_id))


def load_view(conn: AnyConnection, corpus_id: int) -> tuple[str, ContextMap]:
    """The corpus root and its map (state and entries) in one statement, for the map's reads."""
    rows = driver(conn).execute(_SELECT_VIEW, {"cid": corpus_id}).fetchall()
    if not rows:
        raise MapError(f"no corpus with id {corpus_id}", "index the corpus first")
    cut = 1 + len(_STATE_COLUMNS)
    entries = (_row_entry(r[cut:]) for r in rows if r[cut] is not None)
    return str(rows[0][0]), ContextMap(_row_state(rows[0][1:cut]), {e.id: e for e in entries})


@dataclass(frozen=True)
class EditRecord:
    """One row of the edit log, decoded."""

    version: int
    op: str
    entry_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    session: str | None
    reason: str
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form for `peek map history --json`."""
        return {"op": self.op, "id": self.entry_id, "before": self.before, "after": self.after,
                "session": self.session, "reason": self.reason}


def _record(row: Any) -> EditRecord:
    m = dict(zip(_EDIT_COLUMNS, row, strict=True))
    return EditRecord(
        version=m["version"], op=m["op"], entry_id=m["entry_id"],
        before=unpack_json(m["before"]) if m["before"] is not None else None,
        after=unpack_json(m["after"]) if m["after"] is not None else None,
        session=m["session"], reason=m["reason"], created_at=m["created_at"],
    )


def edits_between(conn: AnyConnection, corpus_id: int, low: int, high: int) -> list[EditRecord]:
    """Edit rows with low < version <= high, in the order they were made."""
    rows = driver(conn).execute(_SELECT_EDITS, {"cid": corpus_id, "low": low, "high": high})
    return [_record(r) for r in rows]


def undo(entries: dict[str, Entry], edit: EditRecord) -> None:
    """Reverse one entry edit in place (state edits carry no entry and are skipped)."""
    if edit.entry_id is None:
        return
    if edit.before is None:
        entries.pop(edit.entry_id, None)
    elif edit.after is None:
        entries[edit.entry_id] = Entry.from_dict(edit.before)
    else:
        entries[edit.entry_id] = entries[edit.entry_id].patched(edit.before)


def entries_at(conn: AnyConnection, corpus_id: int, version: int) -> dict[str, Entry]:
    """The entries as they were right after `version` was committed (0 is the empty map)."""
    state, _ = load_state(conn, corpus_id)
    if not 0 <= version <= state.version:
        raise VersionError(f"the map has no version {version}",
                           f"versions run from 0 to {state.version}; see: peek map history")
    entries = load_entries(conn, corpus_id)
    for edit in reversed(edits_between(conn, corpus_id, version, state.version)):
        undo(entries, edit)
    return entries


@dataclass(frozen=True)
class EntryChange:
    """How one entry differs between two versions."""

    id: str
    change: str  # added | removed | changed
    before: Entry | None
    after: Entry | None

    def to_dict(self) -> dict[str, Any]:
        """JSON form for `peek map diff --json`."""
        return {"id": self.id, "change": self.change,
                "before": self.before.to_dict() if self.before else None,
                "after": self.after.to_dict() if self.after else None}


def diff_entries(old: dict[str, Entry], new: dict[str, Entry]) -> list[EntryChange]:
    """Entry-level differences, in id order."""
    changes = []
    for entry_id in sorted(old.keys() | new.keys()):
        a, b = old.get(entry_id), new.get(entry_id)
        if a == b:
            continue
        kind = "added" if a is None else "removed" if b is None else "changed"
        changes.append(EntryChange(entry_id, kind, a, b))
    return changes


class ChangeSet:
    """The edits of one write transaction; `finish` bumps the version once if anything changed."""

    def __init__(self, conn: AnyConnection, corpus_id: int, cmap: ContextMap, stored: bool,
                 session: str | None) -> None:
        self.conn = conn
        self._raw = driver(conn)
        self.corpus_id = corpus_id
        self.map = ContextMap(cmap.state, dict(cmap.entries))
        self.session = session
        self._stored = stored
        self._edits: list[dict[str, Any]] = []
        self.records: list[EditRecord] = []
        self.now = time.time()

    @property
    def version(self) -> int:
        """The version this change set commits as."""
        return self.map.state.version + 1

    @property
    def changed(self) -> bool:
        """Whether any edit was made."""
        return bool(self._edits)

    def add(self, section: str, text: str, anchors: tuple[Anchor, ...] = (), *, step: int,
            op: str = "ADD", reason: str = "") -> Entry:
        """Add an entry under a fresh system-assigned id (never reused, even after removal)."""
        number = self.map.state.next_id(section)
        entry = Entry(id=make_id(section, number), section=section, text=_clean(text),
                      created_step=step, updated_step=step, anchors=anchors)
        return self.put(entry, op=op, reason=reason)

    def put(self, entry: Entry, *, op: str, reason: str = "") -> Entry:
        """Insert an entry that keeps its id (import, rollback); the id counter moves past it."""
        parsed = parse_id(entry.id)
        if parsed is None or parsed[0] != entry.section or entry.id in self.map.entries:
            raise MapError(f"cannot insert entry {entry.id!r}", "ids are <slug>-<5 digits>")
        slug, number = parsed
        next_ids = dict(self.map.state.next_ids)
        next_ids[slug] = max(next_ids.get(slug, 1), number + 1)
        self.map.state = replace(self.map.state, next_ids=next_ids)
        self._raw.execute(_INSERT_ENTRY, _entry_row(self.corpus_id, entry))
        self.map.entries[entry.id] = entry
        self._log(op, entry.id, None, entry.to_dict(), reason)
        return entry

    def update(self, entry_id: str, *, op: str, reason: str = "", **changes: Any) -> Entry:
        """Change some fields of an entry; a change that changes nothing logs nothing."""
        old = self.map.get(entry_id)
        if "text" in changes:
            changes["text"] = _clean(changes["text"])
        new = replace(old, **changes)
        before, after = old.delta(new)
        if not before:
            return old
        row = _entry_row(self.corpus_id, new)
        values = {k: row[k] for k in before}
        self._raw.execute(_update_entry(values),
                          {**values, "cid": self.corpus_id, "eid": entry_id})
        self.map.entries[entry_id] = new
        self._log(op, entry_id, before, after, reason)
        return new

    def remove(self, entry_id: str, *, op: str, reason: str = "") -> Entry:
        """Remove an entry; the log keeps all of it, so diff and rollback can bring it back."""
        old = self.map.get(entry_id)
        self._raw.execute(_DELETE_ENTRY, {"cid": self.corpus_id, "eid": entry_id})
        del self.map.entries[entry_id]
        self._log(op, entry_id, old.to_dict(), None, reason)
        return old

    def set_state(self, *, op: str, reason: str = "", **changes: Any) -> None:
        """Change policy state (budget, steps, frozen...) with an edit row saying so."""
        old = self.map.state
        before = {k: getattr(old, k) for k in changes if getattr(old, k) != changes[k]}
        if not before:
            return
        self.map.state = replace(old, **changes)
        self._log(op, None, before, {k: changes[k] for k in before}, reason)

    def finish(self) -> int:
        """Write the state and the edit rows; returns the map's version afterwards."""
        if not self._edits:
            return self.map.state.version
        self.map.state = replace(self.map.state, version=self.version)
        self._write_state()
        self._raw.executemany(_INSERT_EDIT, self._edits)
        self._edits = []
        return self.map.state.version

    def _log(self, op: str, entry_id: str | None, before: dict[str, Any] | None,
             after: dict[str, Any] | None, reason: str) -> None:
        self.records.append(EditRecord(self.version, op, entry_id, before, after, self.session,
                                       reason, self.now))
        self._edits.append({
            "corpus_id": self.corpus_id, "version": self.version, "op": op, "entry_id": entry_id,
            "before": None if before is None else pack_text(_dumps(before)),
            "after": None if after is None else pack_text(_dumps(after)),
            "session": self.session, "reason": reason, "created_at": self.now,
        })

    def _write_state(self) -> None:
        s = self.map.state
        values = {"version": s.version, "next_ids": _dumps(s.next_ids), "updated_at": self.now,
                  **{k: getattr(s, k) for k in _STATE_FIELDS}}
        if self._stored:
            self._raw.execute(_UPDATE_STATE, {**values, "cid": self.corpus_id})
        else:
            self._raw.execute(_INSERT_STATE, {**values, "corpus_id": self.corpus_id})
            self._stored = True


def _clean(text: str) -> str:
    cleaned = normalize_text(text)
    if not cleaned:
        raise MapError("an entry's text cannot be empty", "give the entry some words")
    return cleaned


@dataclass(frozen=True)
class VersionRecord:
    """One version of the map and the edits that made it."""

    version: int
    created_at: float
    session: str | None
    edits: tuple[EditRecord, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON form for `peek map history --json`."""
        return {"version": self.version, "created_at": self.created_at, "session": self.session,
                "edits": [e.to_dict() for e in self.edits]}


class MapStore:
    """The map of one corpus in one peek store."""

    def __init__(self, db: Database, corpus_id: int) -> None:
        self.db = db
        self.corpus_id = corpus_id

    def load(self) -> ContextMap:
        """The current map (defaults if the corpus has none yet)."""
        with self.db.query() as conn:
            return load_map(conn, self.corpus_id)

    @contextmanager
    def change(self, session: str | None = None) -> Iterator[ChangeSet]:
        """A change set in one write transaction, committed (with a version bump) on exit."""
        with self.db.raw_write() as conn:
            state, stored = load_state(conn, self.corpus_id)
            cmap = ContextMap(state, load_entries(conn, self.corpus_id))
            cs = ChangeSet(conn, self.corpus_id, cmap, stored, session)
            yield cs
            cs.finish()

    def history(self, limit: int | None = 20) -> list[VersionRecord]:
        """The most recent versions first, each with its edits in the order they were made."""
        with self.db.query() as conn:
            top, _ = load_state(conn, self.corpus_id)
            low = 0 if limit is None else max(0, top.version - limit)
            edits = edits_between(conn, self.corpus_id, low, top.version)
        return _group(edits)

    def entries_at(self, version: int) -> dict[str, Entry]:
        """The entries right after `version` (0 is the empty map)."""
        with self.db.query() as conn:
            return entries_at(conn, self.corpus_id, version)

    def diff(self, v1: int, v2: int) -> list[EntryChange]:
        """What changed in the entries from version v1 to version v2."""
        with self.db.query() as conn:
            return diff_entries(entries_at(conn, self.corpus_id, v1),
                                entries_at(conn, self.corpus_id, v2))


def _group(edits: list[EditRecord]) -> list[VersionRecord]:
    by_version: dict[int, list[EditRecord]] = {}
    for edit in edits:
        by_version.setdefault(edit.version, []).append(edit)
    return [VersionRecord(v, items[0].created_at, items[0].session, tuple(items))
            for v, items in sorted(by_version.items(), reverse=True)]
