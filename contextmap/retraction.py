"""Retraction: take back what one session's outcome taught the map, and nothing since.

A recorded outcome can be wrong (the host reported the wrong files, the change was reverted).
Its policy update is the newest one logged for its session; retracting reverses that update's
edits as a new version, where doing so cannot undo anyone else's work:
- a tag's counts are subtracted from the entry's current counts (later tags stay);
- an entry it added is removed, unless a person vouched for it or a later session found it
  helpful;
- an entry it rewrote gets its earlier text back, if nothing rewrote it since and no person
  vouched for the rewrite;
- an entry it deleted comes back, if its id is free.
Evictions, stale marks and policy state (evolve steps taken) are not reversed: they follow from
the budget and the tree, and the Evictor runs again at the end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from peek.contextmap.model import Entry
from peek.contextmap.snapshot import vouched
from peek.contextmap.store import EditRecord, edits_between
from peek.db import driver

if TYPE_CHECKING:
    from peek.contextmap.store import ChangeSet

OP = "RETRACT"
COUNTERS = ("uses", "helpful", "harmful", "stale")


def outcome_edits(cs: ChangeSet, session: str) -> list[EditRecord]:
    """The edits of the session's newest policy update (its outcome's), in order; none when
    that update changed nothing (the map was frozen, or the plan failed)."""
    row = driver(cs.conn).execute(
        "SELECT version, status FROM map_sessions WHERE corpus_id = :c AND session = :s "
        "ORDER BY id DESC LIMIT 1", {"c": cs.corpus_id, "s": session}).fetchone()
    if row is None or row[1] != "applied":
        return []
    edits = edits_between(cs.conn, cs.corpus_id, int(row[0]) - 1, int(row[0]))
    return [e for e in edits if e.session == session and e.op != OP]


def retract_edits(cs: ChangeSet, edits: list[EditRecord], reason: str) -> int:
    """Reverse the edits newest first where that is safe; returns how many were reversed."""
    people = vouched(cs.conn, cs.corpus_id, cs.map.entries.values())
    done = 0
    for edit in reversed(edits):
        if edit.entry_id is not None and edit.entry_id not in people:
            done += _reverse(cs, edit, reason)
    return done


def _reverse(cs: ChangeSet, edit: EditRecord, reason: str) -> int:
    """Reverse one edit; 1 if it was, 0 if the entry moved on since."""
    if edit.op == "TAG":
        return _untag(cs, edit, reason)
    if edit.op == "ADD":
        return _unadd(cs, edit, reason)
    if edit.op == "REPLACE":
        return _unreplace(cs, edit, reason)
    if edit.op == "DELETE":
        return _undelete(cs, edit, reason)
    return 0


def _untag(cs: ChangeSet, edit: EditRecord, reason: str) -> int:
    entry = cs.map.entries.get(edit.entry_id or "")
    before, after = edit.before or {}, edit.after or {}
    if entry is None:
        return 0
    changes = {k: max(0, getattr(entry, k) - (int(after[k]) - int(before[k])))
               for k in COUNTERS if k in after and k in before}
    cs.update(entry.id, op=OP, reason=reason, **changes)
    return 1


def _unadd(cs: ChangeSet, edit: EditRecord, reason: str) -> int:
    entry = cs.map.entries.get(edit.entry_id or "")
    if entry is None or entry.helpful > 0 or entry.pinned:
        return 0
    cs.remove(entry.id, op=OP, reason=reason)
    return 1


def _unreplace(cs: ChangeSet, edit: EditRecord, reason: str) -> int:
    entry = cs.map.entries.get(edit.entry_id or "")
    after = edit.after or {}
    if entry is None or entry.text != after.get("text", entry.text) or entry.pinned:
        return 0
    old = entry.patched({k: v for k, v in (edit.before or {}).items() if k in ("text", "anchors")})
    cs.update(entry.id, op=OP, reason=reason, text=old.text, anchors=old.anchors)
    return 1


def _undelete(cs: ChangeSet, edit: EditRecord, reason: str) -> int:
    if edit.before is None or edit.entry_id in cs.map.entries:
        return 0
    cs.put(Entry.from_dict(edit.before), op=OP, reason=reason)
    return 1
