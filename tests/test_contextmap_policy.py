"""The cache policy end to end on a real indexed corpus: distill, merge, evict, freeze, fresh."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import reference_encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peek.blobs import git_blob_sha
from peek.contextmap import curation
from peek.contextmap.bootstrap import bootstrap_map
from peek.contextmap.cartographer import DeterministicCartographer
from peek.contextmap.distiller import Candidate, Distillation, salient_terms
from peek.contextmap.errors import BudgetError, TrajectoryError
from peek.contextmap.freshness import CorpusView
from peek.contextmap.model import SECTIONS, Anchor, ContextMap, Entry
from peek.contextmap.policy import CachePolicy
from peek.contextmap.render import render_entries
from peek.contextmap.store import MapStore
from peek.contextmap.trajectory import Trajectory, parse_trajectory
from peek.db import Database

FILES = {
    "engine/__init__.py": "from .core import Engine\n",
    "engine/core.py": (
        "from engine.util import slugify_title, RETRY_LIMIT\n\n\n"
        "class Engine:\n"
        '    """Runs jobs."""\n\n'
        "    def run(self, job):\n"
        "        return slugify_title(job)\n\n"
        "    def retry(self, job):\n"
        "        return [self.run(job) for _ in range(RETRY_LIMIT)]\n"
    ),
    "engine/util.py": (
        "RETRY_LIMIT = 3\n\n\ndef slugify_title(text):\n    return text.lower().replace(' ', '-')\n"
    ),
    "engine/cli.py": (
        "from engine.core import Engine\nfrom engine.util import slugify_title\n\n\n"
        "def main():\n    return Engine().run(slugify_title('x'))\n"
    ),
    "engine/web.py": "from engine.core import Engine\n\n\ndef serve():\n    return Engine()\n",
    "docs/guide.md": "# Guide\n\nHow the engine runs jobs.\n",
}
PATHS = sorted(FILES)


@pytest.fixture
def indexed(index_unseeded) -> tuple[Database, int, Path]:
    """This module's corpus, indexed, with an unseeded map."""
    return index_unseeded(FILES)


def session(question: str, path: str | None = None, lines: tuple[int, int] = (1, 3),
            success: bool | None = True, reads: tuple[str, ...] = ()) -> dict[str, Any]:
    """A trajectory that read some files and cited one span; confirmed (success) by default."""
    steps = [{"tool": "read", "args": {"path": p}, "paths": [p], "ok": True}
             for p in (*reads, *([path] if path else []))]
    cites = [{"path": path, "start_line": lines[0], "end_line": lines[1]}] if path else []
    return {"question": question, "steps": steps, "answer": "see the cited code",
            "citations": cites, "outcome": {"edited_files": [], "success": success}}


def independent_tokens(text: str) -> int:
    """tiktoken o200k_base directly, not through the map's own counting or caches."""
    return len(reference_encoding().encode(text, disallowed_special=()))


def test_a_session_adds_a_location_entry_and_the_next_one_tags_and_merges(indexed) -> None:
    db, cid, root = indexed
    policy = CachePolicy(db, cid, root=root)
    first = policy.update(session("Where does the Engine retry jobs?", "engine/core.py", (10, 11)))
    assert first.status == "applied" and [e.op for e in first.edits] == ["ADD"]
    entry = MapStore(db, cid).load().entries["cr-00001"]
    assert entry.text.startswith("Engine, retry, jobs: engine/core.py:10-11")
    assert "Engine.retry" in entry.text
    sha = git_blob_sha((root / "engine/core.py").read_bytes())
    assert entry.anchors == (Anchor("engine/core.py", 10, 11, sha),)

    second = policy.update(session("How does Engine run one job?", "engine/core.py", (7, 10)))
    assert second.tags == {"cr-00001": "helpful"}
    assert [(e.op, e.entry_id) for e in second.edits] == [("REPLACE", "cr-00001")]
    cmap = MapStore(db, cid).load()
    assert list(cmap.entries) == ["cr-00001"]
    merged = cmap.entries["cr-00001"]
    assert merged.helpful == 1 and merged.uses == 1
    assert "retry" in merged.text and "run" in merged.text and "Engine.run" in merged.text
    assert merged.anchors[0].start_line == 7
    third = policy.update(session("Where is the retry limit?", "engine/util.py", (1, 1)))
    assert [(e.op, e.entry_id) for e in third.edits] == [("ADD", "cr-00002")]


def test_salient_terms_prefer_identifiers_and_drop_stopwords() -> None:
    terms = salient_terms("Which scheduler queue handles retry_limit for the Engine workers?",
                          ["Engine"])
    assert terms == ["scheduler", "queue", "retry_limit", "Engine"]


def test_cartographer_merges_text_twins_and_leaves_pinned_entries_alone() -> None:
    cmap = ContextMap(entries={
        "cu-00001": Entry("cu-00001", "cu", "the engine retries each job three times"),
        "cu-00002": Entry("cu-00002", "cu", "docs live in docs/guide.md", pinned=True),
    })
    dist = Distillation("d", {}, (
        Candidate("cu", "the engine retries each job three times before failing"),
        Candidate("cu", "docs live in docs/guide.md and nowhere else"),
        Candidate("pf", "generated files must not be edited"),
    ))
    edits = DeterministicCartographer().plan(dist, cmap).edits
    assert [(e.op, e.entry_id, e.section) for e in edits] == [
        ("REPLACE", "cu-00001", "cu"), ("ADD", None, "pf")]
    assert edits[0].text == "the engine retries each job three times before failing"


def test_cartographer_merges_anchor_overlap_into_one_entry() -> None:
    old = Entry("cr-00001", "cr", "slugify: engine/util.py:4-5 (slugify_title)",
                anchors=(Anchor("engine/util.py", 4, 5, "a" * 40),))
    cand = Candidate("cr", "title slugs: engine/util.py:5-5 (slugify_title); engine/cli.py",
                     (Anchor("engine/util.py", 5, 5, "b" * 40), Anchor("engine/cli.py", 1, 6,
                                                                        "c" * 40)))
    edits = DeterministicCartographer().plan(Distillation("d", {}, (cand,)),
                                             ContextMap(entries={old.id: old})).edits
    assert len(edits) == 1 and edits[0].op == "REPLACE"
    assert edits[0].text == ("slugify, title slugs: engine/util.py:5-5 (slugify_title); "
                             "engine/cli.py")
    assert [a.blob_sha[0] for a in edits[0].anchors or ()] == ["b", "c"]


def test_failed_sessions_tag_harmful_add_nothing_and_repeated_harm_deletes(indexed) -> None:
    db, cid, root = indexed
    policy = CachePolicy(db, cid, root=root)
    policy.update(session("Where is slugify_title?", "engine/util.py", (4, 5)))
    bad = session("Why does slugify_title fail?", reads=("engine/util.py",), success=False)
    first = policy.update(bad)
    assert first.tags == {"cr-00001": "harmful"} and first.edits == ()
    unrelated = session("Why does the retry loop fail?", reads=("engine/util.py",), success=False)
    assert policy.update(unrelated).tags == {}  # touching a file is not using its entries
    second = policy.update(bad)
    assert [(e.op, e.entry_id) for e in second.edits] == [("DELETE", "cr-00001")]
    assert MapStore(db, cid).load().entries == {}


def test_changed_code_marks_entries_stale_on_render_and_in_sessions(indexed) -> None:
    db, cid, root = indexed
    policy = CachePolicy(db, cid, root=root)
    policy.update(session("Where is slugify_title?", "engine/util.py", (4, 5)))
    fresh = policy.view()
    assert [(e.outdated, s) for e, s in fresh.entries] == [(False, 0.0)]
    original = (root / "engine/util.py").read_text()
    (root / "engine/util.py").write_text(original + "\n\ndef extra():\n    return 2\n")
    stale = policy.view()
    entry, score = stale.entries[0]
    assert entry.outdated and score < 0 and "(stale)" in stale.text
    assert stale.to_dict()["entries"][0]["stale"] is True
    assert MapStore(db, cid).history(1)[0].edits[0].op == "ADD"  # a read never writes
    touched = policy.update(session("What else is in util?", reads=("engine/util.py",)))
    assert touched.tags == {"cr-00001": "stale"}
    (root / "engine/util.py").write_text(original)
    assert [e.outdated for e, _ in policy.view().entries] == [False]


def test_map_freezes_after_m_updates_and_is_then_only_read(indexed) -> None:
    db, cid, root = indexed
    policy = CachePolicy(db, cid, root=root, evolve_steps=2)
    policy.update(session("Where is slugify_title?", "engine/util.py", (4, 5)))
    second = policy.update(session("Where does Engine retry?", "engine/core.py", (10, 11)))
    assert second.status == "applied"
    frozen = MapStore(db, cid).load()
    assert frozen.state.frozen and frozen.state.updates == 2
    third = CachePolicy(db, cid, root=root).update(
        session("Where is serve?", "engine/web.py", (4, 5)))
    assert third.status == "frozen" and third.edits == () and third.version == second.version
    assert MapStore(db, cid).load() == frozen
    with db.read() as conn:
        statuses = [r[0] for r in conn.exec_driver_sql(
            "SELECT status FROM map_sessions ORDER BY id")]
    assert statuses == ["applied", "applied", "frozen"]
    CachePolicy(db, cid, evolve_steps=None).configure()  # m = None: keep evolving again
    assert not MapStore(db, cid).load().state.frozen


def test_an_update_that_cannot_fit_the_pinned_entries_changes_nothing(indexed) -> None:
    db, cid, root = indexed
    CachePolicy(db, cid, root=root).update(session("Where is serve?", "engine/web.py", (4, 5)))
    curation.set_pinned(db, cid, "cr-00001", True)
    before = MapStore(db, cid).load()
    with pytest.raises(BudgetError):
        CachePolicy(db, cid, root=root, budget=4).update(
            session("Where is main?", "engine/cli.py", (5, 6)))
    assert MapStore(db, cid).load() == before
    with db.read() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM map_sessions").scalar() == 1


@pytest.mark.parametrize(("raw", "message"), [
    ("{oops", "not valid JSON: .* line 1 column 2"),
    ('{"answer": "x"}', "question: Field required"),
    ('{"question": "q", "answer": "a", "citations": [{"path": "a.py", "start_line": 5, '
     '"end_line": 2}]}', "citations: .*item 0: a.py:5-2"),
    ('{"question": "q", "answer": "a", "steps": [{"tool": "read", "ok": "maybe"}]}',
     "steps.0.ok"),
])
def test_invalid_trajectories_get_one_clear_error(raw: str, message: str) -> None:
    with pytest.raises(TrajectoryError, match=message):
        parse_trajectory(raw, "t.json")


def test_trajectory_optional_parts_default() -> None:
    traj = parse_trajectory('{"question": "q", "answer": "a"}')
    assert traj == Trajectory(question="q", answer="a")
    assert traj.outcome.success is None and traj.steps == []


def test_bootstrap_seeds_layout_and_central_code_within_half_the_budget(indexed) -> None:
    db, cid, root = indexed
    result = bootstrap_map(db, cid, root)
    cmap = MapStore(db, cid).load()
    texts = [e.text for e in cmap.ordered()]
    assert texts[0].startswith("Layout: engine/ (5 files: python); docs/ (1 file: markdown)")
    assert texts[1:] == ["slugify_title: engine/util.py (used by 2 files)",
                         "Engine, run: engine/core.py (used by 3 files)"]
    anchor = cmap.entries["cr-00003"].anchors[0]
    assert (anchor.path, anchor.start_line, anchor.end_line) == ("engine/core.py", 1, 11)
    assert all(e.section == "cr" for e in cmap.ordered())
    assert independent_tokens(render_entries(cmap.entries.values())) <= 512
    assert result.tokens == independent_tokens(render_entries(cmap.entries.values()))
    assert bootstrap_map(db, cid, root).skipped


def test_bootstrap_respects_a_small_budget(indexed) -> None:
    db, cid, root = indexed
    bootstrap_map(db, cid, root, budget=80)
    text = render_entries(MapStore(db, cid).load().entries.values())
    assert 0 < independent_tokens(text) <= 40


class FixedDistiller:
    """A Distiller that proposes given candidates (an alternative implementation, not a mock)."""

    def __init__(self, candidates: tuple[Candidate, ...]) -> None:
        self.candidates = candidates

    def distill(self, trajectory: Trajectory, cmap: ContextMap, view: CorpusView) -> Distillation:
        return Distillation("fixed", {}, self.candidates)


TEXT = st.text(min_size=1, max_size=300).filter(lambda t: t.strip() != "")
OPS = st.one_of(
    st.tuples(st.just("session"), st.sampled_from(PATHS), st.integers(1, 6),
              st.sampled_from(["Where is Engine?", "How are titles slugified?",
                               "What does serve return?", "Where is the retry limit?"])),
    st.tuples(st.just("learn"), st.sampled_from([s.slug for s in SECTIONS]), TEXT),
    st.tuples(st.just("pin"), st.integers(0, 20)),
    st.tuples(st.just("unpin"), st.integers(0, 20)),
    st.tuples(st.just("edit"), st.integers(0, 20), TEXT),
    st.tuples(st.just("budget"), st.integers(30, 300)),
)


def apply_op(db: Database, cid: int, root: Path, op: tuple[Any, ...]) -> None:
    """Run one random operation; BudgetError is an allowed refusal (it changes nothing)."""
    ids = sorted(MapStore(db, cid).load().entries)
    pick = ids[op[1] % len(ids)] if ids and op[0] in ("pin", "unpin", "edit") else None
    try:
        if op[0] == "session":
            CachePolicy(db, cid, root=root).update(session(op[3], op[1], (op[2], op[2] + 1)))
        elif op[0] == "learn":
            CachePolicy(db, cid, root=root, distiller=FixedDistiller(
                (Candidate(op[1], op[2]),))).update(session("q", None))
        elif op[0] in ("pin", "unpin") and pick:
            curation.set_pinned(db, cid, pick, op[0] == "pin")
        elif op[0] == "edit" and pick:
            curation.edit_entry(db, cid, pick, op[2], root)
        elif op[0] == "budget":
            CachePolicy(db, cid, budget=op[1]).view()
    except BudgetError:
        pass


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(OPS, min_size=1, max_size=10))
def test_rendered_map_never_exceeds_the_budget(indexed, ops: list[tuple[Any, ...]]) -> None:
    db, cid, root = indexed
    curation.reset(db, cid)
    CachePolicy(db, cid, budget=120).view()
    for op in ops:
        apply_op(db, cid, root, op)
        cmap = MapStore(db, cid).load()
        stored = render_entries(cmap.entries.values())
        assert independent_tokens(stored) <= cmap.state.budget_tokens
        shown = CachePolicy(db, cid, root=root).render()
        assert independent_tokens(shown) <= cmap.state.budget_tokens
