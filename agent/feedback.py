"""Feedback: what a finished session led to, applied once, as one transaction.

The signal each path gives (the README's "What teaches peek" table says the same):
- `ask` (offline or a model) without an outcome is a hypothesis: it is remembered as "asked,
  cited X", tags nothing helpful and anchors no new map knowledge to what it cited.
- `record` with an outcome (edited files and/or success) is evidence: the outcome is stored once
  per session, the map learns concept -> edited files, entries that led there are tagged
  helpful (harmful on failure), and episodic memory gains the outcome.
- `record --trajectory` without an outcome is a hypothesis like an ask.
- an outcome's `summary` (what the change did, e.g. its commit message) is indexed with the
  question for similar-request matching and with each edited file's profile, and remembered
  with the outcome. A new summary for a session already recorded (with the same outcome, or
  no outcome given) amends it: the summary and those documents are replaced, a memory turn
  notes it, and nothing of the outcome is applied again. A summary with no outcome is refused.
- `record --retract` withdraws a recorded outcome and what it taught (`peek.agent.corrections`),
  and the audit trail keeps what it said. `record --correct` retracts the recorded
  outcome and records the new one in its place (a kill between the two leaves it retracted,
  logged; running the command again records the new one).
- `map edit/pin/forget` are a person's word and always win over what sessions learned.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from peek.errors import QueryError, shown

if TYPE_CHECKING:
    from peek.agent.models import Model
    from peek.agent.workspace import Workspace
    from peek.contextmap.policy import AppliedEdit, CachePolicy, UpdateResult
    from peek.contextmap.trajectory import Trajectory
    from peek.db import AnyConnection
    from peek.memory.outcomes import PastOutcome


class AlreadyRecorded(Exception):
    """Raised inside the write transaction to roll back a second report of the same outcome."""


def record_session(peek: Workspace, trajectory: dict[str, Any] | str | None, *,
                   session: str | None, edited: Sequence[str], success: bool | None,
                   budget: int | None = None, model: Model | None = None,
                   evolve_steps: int | None | Literal["stored"] = "stored",
                   source: str = "record", summary: str | None = None,
                   correct: bool = False) -> UpdateResult:
    """Teach the map and memory from one session's outcome; a repeated report changes nothing
    (a new summary amends the stored one; `correct` replaces a different recorded outcome)."""
    traj = _trajectory(peek, trajectory, session)
    session = session or _new_id()
    traj = _with_outcome(peek, traj, edited, success, summary)
    previous = _previous(peek, session)
    if correct and previous is not None and not _same(previous, traj):
        _correction_needs_outcome(traj)
        from peek.agent.corrections import take_back

        take_back(peek, session, traj, "corrected")  # None: a concurrent correction did
        previous = None
    if previous is not None:  # checked again inside the write, against concurrent reports
        return _repeated(peek, traj, session, previous)
    _summary_needs_outcome(traj)
    try:
        return distill(peek, traj, session, model, budget, evolve_steps,
                       also=_persist(peek, traj, session, source))
    except AlreadyRecorded:
        return _repeated(peek, traj, session, _previous(peek, session))


def distill(peek: Workspace, traj: Trajectory | dict[str, Any], session: str, model: Model | None,
            budget: int | None = None,
            evolve_steps: int | None | Literal["stored"] = "stored",
            also: Callable[[AnyConnection], None] | None = None) -> UpdateResult:
    """Run the cache policy on a session: the model's Distiller and Cartographer when there is
    a model, the deterministic pair when there is none or their output fails (what `also`
    wrote with the failed attempt stays: it does not depend on the map's plan)."""
    result = _policy(peek, budget, model, evolve_steps).update(traj, session=session, also=also)
    if result.status == "failed" and model is not None:
        result = _policy(peek, budget, None, evolve_steps).update(traj, session=session)
    return result


def _trajectory(peek: Workspace, raw: dict[str, Any] | str | None,
                session: str | None) -> Trajectory:
    from peek.contextmap.trajectory import parse_trajectory

    if raw is None:
        if session is None:
            raise QueryError("nothing to record", "give --trajectory FILE or --session ID")
        raw = _stored_trajectory(peek, session)
    return _storable(parse_trajectory(raw))


def _storable(traj: Trajectory) -> Trajectory:
    """A trajectory that can be stored: JSON nested deeper than pydantic serializes (a step's
    `args` 900 lists deep) is refused here, not an unexpected error in the write."""
    from peek.contextmap.errors import TrajectoryError

    try:
        traj.model_dump_json()
    except ValueError as exc:  # pydantic's PydanticSerializationError
        raise TrajectoryError(f"the trajectory cannot be stored: {exc}",
                              "keep step args and outputs to plain, shallow JSON") from exc
    return traj


def _stored_trajectory(peek: Workspace, session: str) -> dict[str, Any]:
    """An asked session's stored trajectory, else the one the map learned from for a host's
    session (less its outcome), so --correct or --summary by id needs no -t again."""
    from peek.agent.session import SessionStore
    from peek.contextmap.sessionlog import logged_trajectory
    from peek.db import driver

    store = SessionStore(peek.db, peek.corpus_id)
    with peek.db.query() as conn:
        asked = driver(conn).execute("SELECT 1 FROM agent_sessions WHERE id = ? AND "
                                     "corpus_id = ?", (session, peek.corpus_id)).fetchone()
        row = None if asked else driver(conn).execute(
            "SELECT trajectory FROM map_sessions WHERE corpus_id = ? AND session = ? "
            "ORDER BY id DESC LIMIT 1", (peek.corpus_id, session)).fetchone()
        logged = None if row is None else logged_trajectory(conn, peek.corpus_id, row[0])
    if logged is None:
        return store.trajectory(session)  # an asked session, or the error naming how to find one
    learned: dict[str, Any] = json.loads(logged)
    learned.pop("outcome", None)
    return learned


def _with_outcome(peek: Workspace, traj: Trajectory, edited: Sequence[str],
                  success: bool | None, summary: str | None) -> Trajectory:
    """The trajectory with the reported outcome (flags win over the file's), paths and the
    summary checked."""
    from peek.bounds import check_summary
    from peek.contextmap.trajectory import Outcome

    files = list(edited) or list(traj.outcome.edited_files)
    verdict = success if success is not None else traj.outcome.success
    said = check_summary(summary if summary is not None else traj.outcome.summary)
    outcome = Outcome(edited_files=check_edited(peek, files), success=verdict, summary=said)
    return traj.model_copy(update={"outcome": outcome})


def _same(previous: PastOutcome, traj: Trajectory) -> bool:
    """Whether a report says what the recorded outcome says (a new summary only amends)."""
    o = traj.outcome
    return bool(previous.same_as(tuple(o.edited_files), o.success))


def _correction_needs_outcome(traj: Trajectory) -> None:
    """A correction says what the session really led to; withdrawing is `--retract`."""
    from peek.contextmap.policy import confirmed

    if not confirmed(traj):
        raise QueryError("a correction needs the outcome that replaces the recorded one",
                         "give the edited files and/or success or failure; to withdraw the "
                         "outcome use --retract")


def _summary_needs_outcome(traj: Trajectory) -> None:
    """A summary says what a change did, so it comes with the change's outcome."""
    from peek.contextmap.policy import confirmed

    if traj.outcome.summary is not None and not confirmed(traj):
        raise QueryError("a summary needs an outcome to describe",
                         "give the edited files and/or success or failure with it")


def check_edited(peek: Workspace, files: Sequence[str]) -> list[str]:
    """Edited files as corpus paths; files that are neither indexed nor on disk are an error."""
    from peek.db import marks
    from peek.sandbox.paths import corpus_path

    rel = list(dict.fromkeys(corpus_path(peek.root, f) for f in files))
    if not rel:
        return rel
    with peek.db.query() as conn:
        known = {r[0] for r in conn.execute(
            f"SELECT path FROM files WHERE corpus_id = ? AND path IN ({marks(rel)})",
            (peek.corpus_id, *rel))}
    unknown = [p for p in rel if p not in known and not _on_disk(peek.root, p)]
    if unknown:
        raise QueryError(f"edited files not in the corpus {peek.root}: {', '.join(unknown)}",
                         "give paths relative to the corpus root; run peek index for new files")
    return rel


def _on_disk(root: Path, rel: str) -> bool:
    """A regular file beneath the root now (a new file the index has not seen yet)."""
    from peek.safefs import SandboxError, open_beneath

    try:
        with open_beneath(root, rel, "file"):
            return True
    except SandboxError:
        return False


def _previous(peek: Workspace, session: str) -> Any:
    from peek.memory.outcomes import stored_outcome

    with peek.db.query() as conn:
        return stored_outcome(conn, peek.corpus_id, session)


def _policy(peek: Workspace, budget: int | None, model: Model | None,
            evolve_steps: int | None | Literal["stored"]) -> CachePolicy:
    from peek.contextmap.cartographer import LLMCartographer
    from peek.contextmap.policy import CachePolicy

    if model is None:
        return CachePolicy(peek.db, peek.corpus_id, root=peek.root, budget=budget,
                           evolve_steps=evolve_steps)
    from peek.contextmap.distiller import LLMDistiller

    return CachePolicy(peek.db, peek.corpus_id, root=peek.root, budget=budget,
                       evolve_steps=evolve_steps, distiller=LLMDistiller(model),
                       cartographer=LLMCartographer(model))


def _persist(peek: Workspace, traj: Trajectory, session: str, source: str) -> Any:
    """The outcome row and the session's memory, written in the policy's transaction."""

    def write(conn: AnyConnection) -> None:
        from peek.agent.localize import index_outcome
        from peek.contextmap.policy import confirmed
        from peek.memory.outcomes import PastOutcome, save_outcome, stored_outcome
        from peek.memory.sessions import remember_code_session

        if not confirmed(traj):
            if _policy_saw(conn, peek.corpus_id, session):
                raise AlreadyRecorded(session)
            remember_code_session(conn, peek.corpus_id, peek.root, traj, session)
            return
        if stored_outcome(conn, peek.corpus_id, session) is not None:
            raise AlreadyRecorded(session)
        o = traj.outcome
        step = teach_ranker(peek, conn, traj, session)
        save_outcome(conn, peek.corpus_id, PastOutcome(
            session, traj.question, tuple(o.edited_files), o.success, time.time(), o.summary),
            source, step)
        index_outcome(conn, peek.corpus_id, o.edited_files)
        remember_code_session(conn, peek.corpus_id, peek.root, traj, session, outcome=True)

    return write


def teach_ranker(peek: Workspace, conn: AnyConnection, traj: Trajectory,
                 session: str) -> dict[str, float] | None:
    """Move the ranker's weights toward what was edited, from the candidates the ask scored
    (scored again now if the session came from elsewhere); returns the step taken, so a
    retraction can take it back. A failure teaches nothing here."""
    from peek.agent.localize import learn, localize, unpack
    from peek.agent.session import stored_ranking

    if traj.outcome.success is False or not traj.outcome.edited_files:
        return None
    cands = unpack(stored_ranking(conn, peek.corpus_id, session))
    if cands is None:
        _, cands = localize(conn, peek.corpus_id, traj.question, peek.graph(), {}, 0)
    return learn(conn, peek.corpus_id, cands, traj.outcome.edited_files)


def _policy_saw(conn: AnyConnection, corpus_id: int, session: str) -> bool:
    """Whether the cache policy already learned from this session (a repeated trajectory)."""
    from peek.db import driver

    return driver(conn).execute(
        "SELECT id FROM map_sessions WHERE corpus_id = ? AND session = ? AND status = ? LIMIT 1",
        (corpus_id, session, "applied")).fetchone() is not None


def _repeated(peek: Workspace, traj: Trajectory, session: str, previous: Any) -> UpdateResult:
    """The same outcome again is a no-op, or amends the summary when it brings a new one (as
    does a bare summary); a different outcome for the same session is an error."""
    o = traj.outcome
    bare = not o.edited_files and o.success is None and o.summary is not None
    if previous is not None and not bare and not _same(previous, traj):
        raise QueryError(f"session {shown(session)} already has a recorded outcome "
                         f"(edited {', '.join(previous.edited) or 'nothing'}, "
                         f"success {previous.success})",
                         "to replace it, record again with --correct (MCP and SDK: correct); "
                         "to withdraw it, --retract")
    if o.summary is None or previous is None or o.summary == previous.summary:
        return map_result(peek, session, "unchanged", "outcome already recorded")
    return _amend(peek, session, o.summary)


def _amend(peek: Workspace, session: str, summary: str) -> UpdateResult:
    """Replace a recorded outcome's summary, the documents made from it and say so in memory,
    in one write; the outcome's edits, verdict and what they taught are not applied again."""
    from peek.agent.localize import index_outcome
    from peek.memory.outcomes import amend_summary, stored_outcome
    from peek.memory.sessions import remember_summary

    with peek.db.raw_write() as conn:
        stored = stored_outcome(conn, peek.corpus_id, session)
        fresh = stored is not None and stored.summary != summary  # else a concurrent report won
        if stored is not None and fresh:
            amend_summary(conn, peek.corpus_id, session, summary)
            index_outcome(conn, peek.corpus_id, stored.edited)
            remember_summary(conn, peek.corpus_id, stored.question, session, summary)
    if not fresh:
        return map_result(peek, session, "unchanged", "outcome already recorded")
    return map_result(peek, session, "amended", "summary of the recorded outcome replaced")


def map_result(peek: Workspace, session: str, status: str, diagnosis: str,
               edits: tuple[AppliedEdit, ...] = ()) -> UpdateResult:
    """A report that changed the map in no way: the map as it stands."""
    from peek.contextmap.policy import CachePolicy, UpdateResult

    view = CachePolicy(peek.db, peek.corpus_id, root=peek.root).view()
    return UpdateResult(corpus=view.corpus, session=session, status=status,
                        version=view.version, diagnosis=diagnosis, tags={},
                        edits=edits, evicted=tuple(e.entry_id or "" for e in edits
                                                   if e.op == "EVICT"), tokens=view.tokens,
                        budget_tokens=view.budget_tokens)


def _new_id() -> str:
    from peek.agent.session import new_session_id

    return new_session_id()
