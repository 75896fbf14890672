"""The cache policy (PEEK Algorithm 1): Distiller -> Cartographer -> apply -> Evictor.

`CachePolicy.update` reads a consistent snapshot of the map, lets the Distiller and Cartographer
plan on it (a model call may take seconds, and no write lock is held meanwhile), then applies
tags, edits, freshness marks and eviction in ONE write transaction that also records the
session. If another writer changed the map in between, edits that name entries which no longer
exist are skipped. After `evolve_steps` updates the map is frozen and only read; `None` keeps it
evolving (a fully online map).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from peek.contextmap.errors import MapError
from peek.contextmap.evictor import Evictor
from peek.contextmap.freshness import CorpusView, apply_outdated, outdated_changes
from peek.contextmap.model import ContextMap, Entry, MapState, Tag
from peek.contextmap.render import render_entries
from peek.contextmap.sessionlog import log_record
from peek.contextmap.store import (
    ChangeSet,
    EditRecord,
    MapStore,
    load_map,
    load_state,
    load_view,
)
from peek.contextmap.tokens import exact_tokens
from peek.db import Database, driver

if TYPE_CHECKING:
    # the planning half (pydantic models) loads on first use: a retraction or a view needs none
    from peek.contextmap.cartographer import Cartographer, Cartography, PlannedEdit
    from peek.contextmap.distiller import Distillation, Distiller
    from peek.contextmap.trajectory import Trajectory
    from peek.db import AnyConnection

log = logging.getLogger("peek.contextmap.policy")
STORED: Literal["stored"] = "stored"
EVOLVE_STEPS_MAX = 1_000_000  # PEEK's m: any larger is "never freeze" (omit it)
_SESSION_COLUMNS = ("corpus_id", "session", "version", "status", "question", "trajectory",
                    "diagnosis", "error", "created_at")
_INSERT_SESSION = (f"INSERT INTO map_sessions ({', '.join(_SESSION_COLUMNS)}) "
                   f"VALUES ({', '.join(':' + c for c in _SESSION_COLUMNS)})")
_SHOWN_OPS = ("ADD", "REPLACE", "DELETE", "EVICT", "STALE", "FRESH")


@dataclass(frozen=True)
class AppliedEdit:
    """An edit as `peek record` reports it."""

    op: str
    entry_id: str | None
    section: str | None
    text: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"op": self.op, "id": self.entry_id, "section": self.section, "text": self.text,
                "reason": self.reason}


@dataclass(frozen=True)
class UpdateResult:
    """What one policy update did; `status` is applied, frozen or failed (map unchanged)."""

    corpus: str
    session: str
    status: str
    version: int
    diagnosis: str
    tags: dict[str, Tag]
    edits: tuple[AppliedEdit, ...]
    evicted: tuple[str, ...]
    tokens: int
    budget_tokens: int
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The `peek record --json` shape."""
        return {"corpus": self.corpus, "session": self.session, "status": self.status,
                "version": self.version, "tokens": self.tokens,
                "budget_tokens": self.budget_tokens, "diagnosis": self.diagnosis,
                "tags": dict(sorted(self.tags.items())),
                "edits": [e.to_dict() for e in self.edits], "evicted": list(self.evicted),
                "error": self.error}


@dataclass(frozen=True)
class MapView:
    """The map as shown and injected: rendered text, its exact tokens, entries with scores."""

    corpus: str
    version: int
    budget_tokens: int
    tokens: int
    text: str
    entries: tuple[tuple[Entry, float], ...]

    def to_dict(self) -> dict[str, Any]:
        """The `peek map --json` contract."""
        return {"corpus": self.corpus, "version": self.version,
                "budget_tokens": self.budget_tokens, "tokens": self.tokens,
                "entries": [{"id": e.id, "section": e.section, "text": e.text,
                             "score": round(float(score), 4), "pinned": e.pinned,
                             "stale": e.outdated}
                            for e, score in self.entries]}


@dataclass(frozen=True)
class _Plan:
    snapshot: ContextMap
    distillation: Distillation
    cartography: Cartography
    blobs: dict[str, str | None]

    @property
    def error(self) -> str | None:
        """Why the plan cannot be applied, if it cannot."""
        return self.distillation.error or self.cartography.error


def corpus_root(db: Database, corpus_id: int) -> str:
    """The corpus's root as stored, for reports."""
    with db.query() as conn:
        row = conn.execute("SELECT root FROM corpora WHERE id = :cid", {"cid": corpus_id}
                           ).fetchone()
    root = None if row is None else row[0]
    if root is None:
        raise MapError(f"no corpus with id {corpus_id}", "index the corpus first")
    return str(root)


class CachePolicy:
    """Maintains one corpus's map: budget B (default 1024), evolve steps m (None = always)."""

    def __init__(self, db: Database, corpus_id: int, *, root: Path | None = None,
                 budget: int | None = None,
                 evolve_steps: int | None | Literal["stored"] = STORED,
                 distiller: Distiller | None = None, cartographer: Cartographer | None = None,
                 evictor: Evictor | None = None) -> None:
        if budget is not None and budget < 1:
            raise MapError(f"budget must be a positive number of tokens, got {budget}")
        if isinstance(evolve_steps, int) and not 0 <= evolve_steps <= EVOLVE_STEPS_MAX:
            raise MapError(f"evolve steps must be from 0 to {EVOLVE_STEPS_MAX}, "
                           f"got {evolve_steps}")
        self.db = db
        self.corpus_id = corpus_id
        self.root = root
        self.budget = budget
        self.evolve_steps = evolve_steps
        self._distiller = distiller
        self._cartographer = cartographer
        self.evictor = evictor or Evictor()
        self.store = MapStore(db, corpus_id)
        self._corpus: str | None = None

    @property
    def distiller(self) -> Distiller:
        """The Distiller given, else the deterministic one (made on first use)."""
        if self._distiller is None:
            from peek.contextmap.distiller import DeterministicDistiller

            self._distiller = DeterministicDistiller()
        return self._distiller

    @property
    def cartographer(self) -> Cartographer:
        """The Cartographer given, else the deterministic one (made on first use)."""
        if self._cartographer is None:
            from peek.contextmap.cartographer import DeterministicCartographer

            self._cartographer = DeterministicCartographer()
        return self._cartographer

    @property
    def corpus(self) -> str:
        """The corpus root, looked up once."""
        if self._corpus is None:
            self._corpus = corpus_root(self.db, self.corpus_id)
        return self._corpus

    def update(self, trajectory: Trajectory | dict[str, Any] | str,
               session: str | None = None,
               also: Callable[[AnyConnection], None] | None = None) -> UpdateResult:
        """Learn from one finished session; frozen maps and failed plans leave the map as is.

        `also` runs inside the same write transaction (an outcome, memory), so a session's
        whole update commits or rolls back as one; it may raise to abort everything.
        """
        from peek.contextmap.trajectory import Trajectory, parse_trajectory

        traj = trajectory if isinstance(trajectory, Trajectory) else parse_trajectory(trajectory)
        session = session or uuid.uuid4().hex[:12]
        plan = self._plan(traj)
        with self.store.change(session) as cs:
            if also is not None:
                also(cs.conn)
            self.settle(cs)
            if cs.map.state.frozen or plan is None or plan.error:
                return self._skip(cs, traj, plan)
            return self._apply(cs, traj, plan)

    def view(self) -> MapView:
        """The map now, computed on read and never written: anchors checked against the working
        tree, this policy's budget applied. Writers (`update`, `configure`) persist marks."""
        with self.db.query() as conn:  # a plain driver read: one statement unless anchored
            self._corpus, snap = load_view(conn, self.corpus_id)
            root = self.root or (Path(self._corpus) if self._corpus else None)
            marks = outdated_changes(snap.entries.values(), CorpusView(conn, self.corpus_id, root))
        entries = {k: replace(e, outdated=marks.get(k, e.outdated))
                   for k, e in snap.entries.items()}
        state = snap.state
        if self.budget is not None:
            state = replace(state, budget_tokens=self.budget)
        for entry in self.evictor.victims(entries.values(), state.budget_tokens, state.updates):
            del entries[entry.id]
        return self._make_view(ContextMap(state, entries))

    def configure(self) -> MapView:
        """Persist this policy's budget and evolve steps (and the marks and evictions they
        imply) when they differ from the stored ones; then the view."""
        with self.db.query() as conn:
            state, _ = load_state(conn, self.corpus_id)
        if self._unsettled(state):
            with self.store.change("configure") as cs:
                self.settle(cs)
                apply_outdated(cs, outdated_changes(cs.map.entries.values(), self._view(cs)))
                self.evictor.enforce(cs)
        return self.view()

    def render(self) -> str:
        """The block to put in the system prompt ("" for an empty map)."""
        return self.view().text

    def settle(self, cs: ChangeSet) -> None:
        """Apply this policy's budget and evolve-steps settings inside a change set."""
        if self.budget is not None:
            cs.set_state(op="BUDGET", budget_tokens=self.budget, reason="budget set")
        if self.evolve_steps != STORED:
            cs.set_state(op="EVOLVE", evolve_steps=self.evolve_steps, reason="evolve steps set")
            m = cs.map.state.evolve_steps
            frozen = m is not None and cs.map.state.updates >= m
            cs.set_state(op="FREEZE" if frozen else "UNFREEZE", frozen=frozen,
                         reason=f"{cs.map.state.updates} updates of {m}")

    def _frozen(self, state: MapState) -> bool:
        """Whether the map is frozen once this policy's evolve-steps setting is applied."""
        if self.evolve_steps == STORED:
            return state.frozen
        return self.evolve_steps is not None and state.updates >= self.evolve_steps

    def _unsettled(self, state: MapState) -> bool:
        budget = self.budget is not None and self.budget != state.budget_tokens
        steps = self.evolve_steps != STORED and self.evolve_steps != state.evolve_steps
        return budget or steps

    def _view(self, cs: ChangeSet, blobs: dict[str, str | None] | None = None) -> CorpusView:
        return CorpusView(cs.conn, self.corpus_id, self.root, blobs)

    def _plan(self, traj: Trajectory) -> _Plan | None:
        """Distill and plan on a snapshot; None when the map is frozen (nothing to learn)."""
        from peek.contextmap.cartographer import Cartography

        with self.db.query() as conn:
            snap = load_map(conn, self.corpus_id)
            if self._frozen(snap.state):
                return None
            view = CorpusView(conn, self.corpus_id, self.root)
            marks = outdated_changes(snap.entries.values(), view)
            shown = ContextMap(snap.state, {k: replace(e, outdated=marks.get(k, e.outdated))
                                            for k, e in snap.entries.items()})
            dist = unconfirmed(self.distiller.distill(traj, shown, view), traj)
            carto = self.cartographer.plan(dist, shown) if dist.ok else Cartography()
        return _Plan(snap, dist, carto, view.blobs)

    def _apply(self, cs: ChangeSet, traj: Trajectory, plan: _Plan) -> UpdateResult:
        step = cs.map.state.updates + 1
        if cs.map.state.version != plan.snapshot.state.version:
            log.info("map changed while planning; edits on vanished entries are skipped")
        for entry_id, tag in sorted(plan.distillation.tags.items()):
            apply_tag(cs, entry_id, tag, step)
        kept = _persons(cs, self.corpus_id) if not confirmed(traj) else set()
        for edit in plan.cartography.edits:
            if edit.entry_id not in kept:
                apply_edit(cs, edit, step)
        view = self._view(cs, plan.blobs)  # the tree as planning saw it, a moment ago
        apply_outdated(cs, outdated_changes(cs.map.entries.values(), view))
        cs.set_state(op="UPDATE", updates=step, reason="policy update")
        m = cs.map.state.evolve_steps
        if m is not None and step >= m:
            cs.set_state(op="FREEZE", frozen=True, reason=f"{step} updates of {m}: frozen")
        self.evictor.enforce(cs, step)
        return self._finish(cs, traj, "applied", plan.distillation.diagnosis, plan)

    def _skip(self, cs: ChangeSet, traj: Trajectory, plan: _Plan | None) -> UpdateResult:
        self.evictor.enforce(cs)  # only acts if this policy's settings lowered the budget
        if plan is not None and plan.error:
            log.error("map update failed, map left unchanged: %s", plan.error)
            return self._finish(cs, traj, "failed", plan.distillation.diagnosis, plan)
        return self._finish(cs, traj, "frozen", "map is frozen; only read", None)

    def _finish(self, cs: ChangeSet, traj: Trajectory, status: str, diagnosis: str,
                plan: _Plan | None) -> UpdateResult:
        shown = [applied(r, cs) for r in cs.records if r.op in _SHOWN_OPS]
        version = cs.finish()
        text = render_entries(cs.map.entries.values())
        error = plan.error if plan is not None else None
        driver(cs.conn).execute(_INSERT_SESSION, {
            "corpus_id": self.corpus_id, "session": cs.session or "", "version": version,
            "status": status, "question": traj.question,
            "trajectory": log_record(cs.conn, self.corpus_id, cs.session or "", traj),
            "diagnosis": diagnosis, "error": error, "created_at": cs.now})
        tags = dict(plan.distillation.tags) if plan and status == "applied" else {}
        return UpdateResult(
            corpus=self.corpus, session=cs.session or "", status=status, version=version,
            diagnosis=diagnosis, tags=tags, edits=tuple(shown),
            evicted=tuple(e.entry_id or "" for e in shown if e.op == "EVICT"),
            tokens=exact_tokens(text), budget_tokens=cs.map.state.budget_tokens, error=error)

    def _make_view(self, cmap: ContextMap) -> MapView:
        entries = cmap.ordered()
        text = render_entries(entries)
        step = cmap.state.updates
        return MapView(self.corpus, cmap.state.version, cmap.state.budget_tokens,
                       exact_tokens(text), text,
                       tuple((e, self.evictor.score(e, step)) for e in entries))


def _persons(cs: ChangeSet, corpus_id: int) -> set[str]:
    """Entries a person edited or pinned: a hypothesis (a session without an outcome) may tag
    them but never rewrite or drop them; a person's word outranks an unconfirmed answer."""
    from peek.contextmap.snapshot import vouched

    return vouched(cs.conn, corpus_id, cs.map.entries.values())


def confirmed(traj: Trajectory) -> bool:
    """Whether a session has an outcome (edits or a verdict): only then is it evidence."""
    return bool(traj.outcome.edited_files) or traj.outcome.success is not None


def unconfirmed(dist: Distillation, traj: Trajectory) -> Distillation:
    """An answer nobody confirmed is a hypothesis: it marks nothing helpful and anchors no
    new knowledge to the places it cited (unanchored notes, stale and harmful tags stay)."""
    if confirmed(traj) or not dist.ok:
        return dist
    tags: dict[str, Tag] = {k: ("neutral" if t == "helpful" else t) for k, t in dist.tags.items()}
    kept = tuple(c for c in dist.candidates if not c.anchors)
    return replace(dist, tags=tags, candidates=kept)


def apply_tag(cs: ChangeSet, entry_id: str, tag: Tag, step: int) -> None:
    """Count a tag on an entry: helpful also refreshes its age (the LRFU recency)."""
    e = cs.map.entries.get(entry_id)
    if e is None:
        return
    changes: dict[str, int] = {"uses": e.uses + 1}
    if tag == "helpful":
        changes.update(helpful=e.helpful + 1, updated_step=step)
    elif tag == "harmful":
        changes["harmful"] = e.harmful + 1
    elif tag == "stale":
        changes["stale"] = e.stale + 1
    cs.update(entry_id, op="TAG", reason=tag, **changes)


def apply_edit(cs: ChangeSet, edit: PlannedEdit, step: int) -> None:
    """Apply one planned edit; ids for ADD come from the store, vanished or pinned targets skip."""
    if edit.op == "ADD":
        cs.add(edit.section, edit.text, edit.anchors or (), step=step, reason=edit.reason)
        return
    target = cs.map.entries.get(edit.entry_id or "")
    if target is None or target.pinned:
        return
    if edit.op == "DELETE":
        cs.remove(target.id, op="DELETE", reason=edit.reason)
        return
    changes: dict[str, Any] = {"text": edit.text, "updated_step": step}
    if edit.anchors is not None:
        changes["anchors"] = edit.anchors
    cs.update(target.id, op="REPLACE", reason=edit.reason, **changes)


def applied(record: EditRecord, cs: ChangeSet) -> AppliedEdit:
    """An edit-log record as `peek record` reports it, with the entry's section and text."""
    data = record.after or record.before or {}
    entry = cs.map.entries.get(record.entry_id or "")
    section = data.get("section") or (entry.section if entry else None)
    text = data.get("text") or (entry.text if entry else None)
    return AppliedEdit(record.op, record.entry_id, section, text, record.reason)
