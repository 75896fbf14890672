"""Corrections: a recorded outcome that was wrong is withdrawn, and what it taught goes too.

`peek record --retract` (and the retraction half of `--correct`) runs here, in one write
transaction: the outcome row and its indexed document go, the ranker's exact step from it is
taken back (kept with the outcome since migration 0016), the file profiles it joined are rebuilt
without it, its map update is reversed where nothing built on it since
(`peek.contextmap.retraction`), memory forgets the session (`peek.memory.forget`; a correction
remembers it again with the new outcome), and the audit trail (`outcome_corrections`) keeps
what it said.
Edit counts and co-edits are computed from the outcomes, so they follow by themselves.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from peek.errors import QueryError, shown

if TYPE_CHECKING:
    from peek.agent.workspace import Workspace
    from peek.contextmap.policy import AppliedEdit, UpdateResult
    from peek.contextmap.store import ChangeSet
    from peek.contextmap.trajectory import Trajectory
    from peek.db import AnyConnection
    from peek.memory.outcomes import PastOutcome


def retract_session(peek: Workspace, session: str) -> UpdateResult:
    """Withdraw a session's recorded outcome, as if it had never been reported."""
    from peek.agent.feedback import map_result

    done = take_back(peek, session, None, "retracted")
    if done is None:
        raise QueryError(f"session {shown(session)} has no recorded outcome",
                         "check the session id; only a recorded outcome can be withdrawn")
    version, edits = done
    said = (f"map version {version} reverses what it taught" if edits
            else "the map held nothing of it to reverse")
    return map_result(peek, session, "retracted", f"outcome withdrawn; {said}", edits)


def take_back(peek: Workspace, session: str, replaced_by: Trajectory | None,
              verb: str) -> tuple[int, tuple[AppliedEdit, ...]] | None:
    """Undo a recorded outcome in one write (ranker step, outcome indexes, map update, memory)
    and log it; returns the map's version after and the map edits made, or None if there was
    no outcome."""
    from peek.contextmap.evictor import Evictor
    from peek.contextmap.policy import applied
    from peek.contextmap.store import MapStore

    with MapStore(peek.db, peek.corpus_id).change(session) as cs:
        old = _unteach(peek, cs.conn, session)
        if old is None:
            return None
        _log_correction(peek, cs.conn, old, replaced_by, verb)
        retract_map(cs, session, f"outcome of session {session} {verb}")
        forget_session(cs.conn, peek.corpus_id, session, f"its outcome was {verb}")
        Evictor().enforce(cs)
        edits = tuple(applied(r, cs) for r in cs.records)
        return cs.finish(), edits


def _unteach(peek: Workspace, conn: AnyConnection, session: str) -> PastOutcome | None:
    """Remove the outcome and what it taught the ranker and the outcome indexes (None when
    the session has no outcome)."""
    from peek.agent.localize import index_outcome, unlearn
    from peek.memory.outcomes import remove_outcome

    removed = remove_outcome(conn, peek.corpus_id, session)
    if removed is None:
        return None
    old, step = removed
    if step is not None:
        unlearn(conn, peek.corpus_id, step)
    index_outcome(conn, peek.corpus_id, old.edited)
    return old


def _log_correction(peek: Workspace, conn: AnyConnection, old: PastOutcome,
                    replaced_by: Trajectory | None, verb: str) -> None:
    """Keep what the withdrawn outcome said, and what replaced it, in the audit trail."""
    from peek.memory.outcomes import PastOutcome, log_correction

    new = None
    if replaced_by is not None:
        o = replaced_by.outcome
        new = PastOutcome(old.session, replaced_by.question, tuple(o.edited_files), o.success,
                          time.time(), o.summary)
    log_correction(conn, peek.corpus_id, old, new, verb)


def forget_session(conn: AnyConnection, corpus_id: int, session: str, reason: str) -> None:
    """Memory forgets the session's turns (its text may state the withdrawn outcome); a
    correction then remembers the session again with the new outcome."""
    from peek.memory.forget import forget_turns, stored_turn_ids

    ids = stored_turn_ids(conn, corpus_id, f"session:{session}")
    if ids:
        forget_turns(conn, corpus_id, ids, reason)


def retract_map(cs: ChangeSet, session: str, reason: str) -> None:
    """Reverse the session's outcome update in the map, where nothing built on it since."""
    from peek.contextmap.retraction import outcome_edits, retract_edits

    retract_edits(cs, outcome_edits(cs, session), reason)
