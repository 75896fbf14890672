"""The context map's model, rendering and versioned store: ids, versions, history, rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

import peek
from peek.contextmap import curation
from peek.contextmap.errors import (
    BudgetError,
    EntryNotFoundError,
    MapError,
    MapImportError,
    VersionError,
)
from peek.contextmap.model import Anchor, Entry, normalize_text, parse_id, section_slug
from peek.contextmap.render import render_entries
from peek.contextmap.store import MapStore
from peek.db import REVISIONS, Database

FILES = {
    "pkg/core.py": "class Engine:\n    def run(self):\n        return 1\n",
    "pkg/util.py": "def slugify(text):\n    return text.lower()\n",
    "README.md": "# Demo\n\nA demo corpus.\n",
}


@pytest.fixture
def corpus(index_unseeded) -> tuple[Database, int, Path]:
    """This module's corpus, indexed, with an unseeded map."""
    return index_unseeded(FILES)


def add(db: Database, cid: int, section: str, text: str, anchors: tuple[Anchor, ...] = ()) -> str:
    with MapStore(db, cid).change("test") as cs:
        return cs.add(section, text, anchors, step=cs.map.state.updates).id


def test_revisions_match_the_alembic_chain_including_the_map() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(peek.__file__).parent / "migrations"))
    chain = [rev.revision for rev in ScriptDirectory.from_config(cfg).walk_revisions()]
    assert tuple(reversed(chain)) == REVISIONS
    assert "0002" in REVISIONS


def test_migration_creates_the_map_tables(corpus) -> None:
    db, _, _ = corpus
    with db.read() as conn:
        tables = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master")}
    assert {"map_state", "map_entries", "map_edits", "map_sessions"} <= tables


def test_ids_are_slug_and_five_digits_and_never_reused(corpus) -> None:
    db, cid, _ = corpus
    first = add(db, cid, "cr", "one")
    second = add(db, cid, "pf", "two")
    assert (first, second) == ("cr-00001", "pf-00001")
    curation.forget(db, cid, first)
    assert add(db, cid, "cr", "three") == "cr-00002"
    assert parse_id("cr-00002") == ("cr", 2)
    assert parse_id("zz-00001") is None and parse_id("cr-1") is None


def test_section_names_and_text_are_normalized() -> None:
    assert section_slug("Context Roadmap") == section_slug("cr") == "cr"
    assert section_slug("pitfalls") == "pf"
    with pytest.raises(MapError, match="unknown map section"):
        section_slug("misc")
    assert normalize_text("  two\n lines\tof   text ") == "two lines of text"
    assert len(normalize_text("x" * 5000)) <= 600


def test_render_is_sectioned_deterministic_and_empty_for_no_entries() -> None:
    a = Entry("pf-00001", "pf", "do not edit generated files")
    b = Entry("cr-00002", "cr", "parser: src/parse.py")
    c = Entry("cr-00001", "cr", "layout: src/", outdated=True)
    text = render_entries([a, b, c])
    assert text == (
        "== CONTEXT ROADMAP ==\n[cr-00001] (stale) layout: src/\n[cr-00002] parser: src/parse.py"
        "\n\n== PITFALLS ==\n[pf-00001] do not edit generated files"
    )
    assert render_entries([c, a, b]) == text
    assert render_entries([]) == ""


def test_every_change_is_edit_rows_under_one_new_version(corpus) -> None:
    db, cid, _ = corpus
    store = MapStore(db, cid)
    assert store.load().state.version == 0
    with store.change("s1") as cs:
        cs.add("cr", "first", step=0)
        cs.add("cu", "second", step=0)
    entry_id = "cr-00001"
    version = curation.set_pinned(db, cid, entry_id, True)
    assert version == 2
    history = store.history()
    assert [v.version for v in history] == [2, 1]
    assert [(e.op, e.entry_id) for e in history[1].edits] == [("ADD", "cr-00001"),
                                                              ("ADD", "cu-00001")]
    assert history[1].session == "s1"
    pin = history[0].edits[0]
    assert (pin.op, pin.before, pin.after, pin.session) == ("PIN", {"pinned": False},
                                                            {"pinned": True}, "user")
    assert curation.set_pinned(db, cid, entry_id, True) == 2  # no change, no version


def test_diff_and_rollback_restore_exact_entries(corpus) -> None:
    db, cid, root = corpus
    store = MapStore(db, cid)
    add(db, cid, "cr", "engine: pkg/core.py")  # v1
    add(db, cid, "pf", "slow tests")  # v2
    v2 = store.load().entries
    curation.edit_entry(db, cid, "cr-00001", "Engine lives in pkg/core.py", root)  # v3
    curation.forget(db, cid, "pf-00001")  # v4
    add(db, cid, "dc", "MAX = 3")  # v5
    changes = {c.id: c.change for c in store.diff(2, 5)}
    assert changes == {"cr-00001": "changed", "pf-00001": "removed", "dc-00001": "added"}
    backwards = {c.id: c.change for c in store.diff(5, 2)}
    assert backwards == {"cr-00001": "changed", "pf-00001": "added", "dc-00001": "removed"}
    version = curation.rollback(db, cid, 2)
    assert version == 6
    assert store.load().entries == v2
    assert store.entries_at(5) != v2 and store.entries_at(6) == v2
    curation.rollback(db, cid, 5)  # a rollback can itself be rolled back
    assert store.load().entries == store.entries_at(5)
    assert store.entries_at(0) == {}
    with pytest.raises(VersionError):
        store.entries_at(99)


def test_pinned_entries_survive_eviction_and_budget_below_them_is_an_error(corpus) -> None:
    db, cid, _ = corpus
    for i in range(12):
        add(db, cid, "cu", f"fact number {i} about the demo corpus and its engine")
    curation.set_pinned(db, cid, "cu-00001", True)
    from peek.contextmap.policy import CachePolicy

    view = CachePolicy(db, cid, budget=60).view()
    ids = [e.id for e, _ in view.entries]
    assert "cu-00001" in ids and view.tokens <= 60 and len(ids) < 12
    assert ids[-1] == "cu-00012"  # ties (all score 0) evict the older entries first
    before = MapStore(db, cid).load()
    with pytest.raises(BudgetError, match="pinned entries need"):
        CachePolicy(db, cid, budget=5).view()
    assert MapStore(db, cid).load() == before


def test_growing_a_pinned_entry_past_the_budget_is_refused(corpus) -> None:
    db, cid, root = corpus
    from peek.contextmap.policy import CachePolicy

    CachePolicy(db, cid, budget=30).configure()  # keeps the budget (a view would not)
    entry_id = add(db, cid, "cu", "short fact")
    curation.set_pinned(db, cid, entry_id, True)
    before = MapStore(db, cid).load()
    with pytest.raises(BudgetError, match="budget is 30"):
        curation.edit_entry(db, cid, entry_id, "a much longer statement " * 10, root)
    assert MapStore(db, cid).load() == before


def test_edit_restamps_anchors_and_unknown_ids_fail(corpus) -> None:
    db, cid, root = corpus
    anchor = Anchor("pkg/core.py", 1, 3, "0" * 40)
    entry_id = add(db, cid, "cr", "engine", (anchor,))
    curation.edit_entry(db, cid, entry_id, "  Engine:\n pkg/core.py  ", root)
    entry = MapStore(db, cid).load().entries[entry_id]
    assert entry.text == "Engine: pkg/core.py"
    assert entry.anchors[0].blob_sha != "0" * 40 and not entry.outdated
    with pytest.raises(EntryNotFoundError):
        curation.edit_entry(db, cid, "cr-00077", "x", root)
    with pytest.raises(MapError, match="empty"):
        curation.edit_entry(db, cid, entry_id, "   ", root)


def test_reset_empties_the_map_and_restarts_steps(corpus) -> None:
    db, cid, _ = corpus
    add(db, cid, "cr", "one")
    with MapStore(db, cid).change() as cs:
        cs.set_state(op="UPDATE", updates=3, frozen=True)
    version = curation.reset(db, cid)
    cmap = MapStore(db, cid).load()
    assert cmap.entries == {} and cmap.state.updates == 0 and not cmap.state.frozen
    assert curation.rollback(db, cid, version - 1) == version + 1
    assert list(MapStore(db, cid).load().entries) == ["cr-00001"]


def test_export_import_round_trip_keeps_ids_counters_and_pins(corpus) -> None:
    db, cid, root = corpus
    add(db, cid, "cr", "engine: pkg/core.py", (Anchor("pkg/core.py", 1, 3, "a" * 40),))
    add(db, cid, "pf", "tests are slow")
    curation.set_pinned(db, cid, "pf-00001", True)
    before = MapStore(db, cid).load().entries
    exported = curation.export_map(db, cid, str(root))
    text = json.dumps(exported)
    curation.reset(db, cid)
    entries = curation.parse_export(text)
    curation.import_map(db, cid, entries)
    after = MapStore(db, cid).load()
    assert after.entries == before
    assert add(db, cid, "cr", "next") == "cr-00002"  # counters moved past imported ids


@pytest.mark.parametrize(("raw", "message"), [
    ("{not json", "not valid JSON"),
    ('{"format": "other", "format_version": 1, "entries": []}', "not a peek map export"),
    ('{"format": "peek-map", "format_version": 1, "entries": [{"id": "cr-1", "section": "cr",'
     ' "text": "x"}]}', "not a peek map export"),
    ('{"format": "peek-map", "format_version": 1, "entries": ['
     '{"id": "cr-00001", "section": "cr", "text": "x"},'
     '{"id": "cr-00001", "section": "cr", "text": "y"}]}', "duplicate"),
])
def test_import_rejects_bad_files(raw: str, message: str) -> None:
    with pytest.raises(MapImportError, match=message):
        curation.parse_export(raw)
