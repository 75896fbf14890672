"""The map as matching reads it: the stored entries with freshness checked, and which of them a
person vouches for. Kept apart from the policy so the offline `ask` imports neither the
Distiller and Cartographer nor their models."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from peek.contextmap.freshness import CorpusView, outdated_changes
from peek.contextmap.model import ContextMap, Entry
from peek.contextmap.store import load_map
from peek.db import Database, driver

if TYPE_CHECKING:
    from peek.db import AnyConnection


def entries_now(db: Database, corpus_id: int, root: Path | None) -> ContextMap:
    """The stored entries with anchors checked against the working tree: what matching needs,
    without rendering or counting tokens (writers keep the map within its budget)."""
    with db.query() as conn:
        snap = load_map(conn, corpus_id)
        marks = outdated_changes(snap.entries.values(), CorpusView(conn, corpus_id, root))
    return ContextMap(snap.state, {k: replace(e, outdated=marks.get(k, e.outdated))
                                   for k, e in snap.entries.items()})


def vouched(conn: AnyConnection, corpus_id: int, entries: Iterable[Entry]) -> set[str]:
    """Entries a person stands behind: pinned, or whose text a person wrote last."""
    entries = list(entries)
    out = {e.id for e in entries if e.pinned}
    rows = driver(conn).execute(
        "SELECT entry_id, op FROM map_edits WHERE corpus_id = :c AND entry_id IN "
        "(SELECT value FROM json_each(:ids)) AND op IN ('ADD', 'REPLACE', 'EDIT') ORDER BY id",
        {"c": corpus_id, "ids": json.dumps(sorted(e.id for e in entries))})
    last: dict[str, str] = {}
    for entry_id, op in rows:
        last[str(entry_id)] = str(op)
    return out | {i for i, op in last.items() if op == "EDIT"}
