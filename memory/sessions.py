"""Code sessions into memory: the deterministic Operator over an agent trajectory, offline.

A finished session becomes one remembered turn (question, answer, files read and edited) and a
GSW chunk of files, symbols, config keys and actions, stamped with the session time and the git
commit, every file-citing item carrying the blob sha the index has for that file. Everything
runs in one write transaction without a model, so the update stays well under 100 ms.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peek.db import driver, marks
from peek.memory.operator import CodeFacts, code_session_chunk
from peek.memory.pipeline import NewTurn, remember
from peek.memory.store import existing_turn_ids

if TYPE_CHECKING:
    from peek.contextmap.trajectory import Trajectory
    from peek.db import AnyConnection, Database

ANSWER_CHARS = 600
SYMBOLS_PER_CITATION = 2


def record_code_session(db: Database, corpus_id: int, root: Path | str,
                        trajectory: dict[str, Any], session: str) -> None:
    """Remember a finished code session (a session id already remembered is left as it is)."""
    with db.write() as conn:
        remember_code_session(conn, corpus_id, Path(root), trajectory, session)


def remember_code_session(conn: AnyConnection, corpus_id: int, root: Path,
                          trajectory: dict[str, Any] | Trajectory, session: str,
                          outcome: bool = False) -> None:
    """Remember a session inside the caller's write transaction, in one memory update: its
    turn (once per session id) and, with `outcome`, what it led to as a second turn."""
    from peek.contextmap.trajectory import Trajectory, parse_trajectory

    traj = trajectory if isinstance(trajectory, Trajectory) else parse_trajectory(trajectory)
    when = _now()
    turn_id = f"session:{session}"
    turns: list[NewTurn] = []
    facts = None
    if not existing_turn_ids(conn, corpus_id, [turn_id]):
        facts = code_facts(conn, corpus_id, root, traj, when)
        turns.append(NewTurn(turn_id, "agent", session_text(traj), when, turn_id, "code",
                             facts.blobs))
    if outcome:
        turns.append(_outcome_turn(conn, corpus_id, traj, session, when))
    if turns:
        remember(conn, corpus_id, turns, chunks=lambda records: [
            code_session_chunk(traj, session, r.seq, facts) for r in records
            if r.turn_id == turn_id and facts is not None])


def _outcome_turn(conn: AnyConnection, corpus_id: int, traj: Trajectory, session: str,
                  when: str) -> NewTurn:
    """What a session led to (edited files, success): one more turn of that session, since
    the session turn itself is immutable; its id makes a repeated report a no-op."""
    o = traj.outcome
    verdict = {True: "succeeded", False: "failed", None: "outcome unknown"}[o.success]
    edited = ", ".join(sorted(set(o.edited_files))) or "nothing"
    text = f"Outcome of: {traj.question}\nEdited: {edited}; {verdict}"
    if o.summary:
        text += f"\nSummary: {o.summary}"
    blobs = _indexed_blobs(conn, corpus_id, sorted(set(o.edited_files)))
    return NewTurn(f"session:{session}:outcome", "user", text, when, f"session:{session}",
                   "code", blobs)


def remember_summary(conn: AnyConnection, corpus_id: int, question: str, session: str,
                     summary: str) -> None:
    """A recorded outcome's new summary as one more turn of its session (turns are never
    rewritten); its id holds the summary's digest, so the same amendment is remembered once."""
    import hashlib

    digest = hashlib.sha256(summary.encode("utf-8")).hexdigest()[:12]
    turn = NewTurn(f"session:{session}:summary:{digest}", "user",
                   f"Summary of: {question}\n{summary}", _now(), f"session:{session}", "code")
    remember(conn, corpus_id, [turn])


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def session_text(traj: Trajectory) -> str:
    """The remembered text of a session: what was asked, answered, read and edited."""
    answer = " ".join(traj.answer.split())
    answer = answer if len(answer) <= ANSWER_CHARS else answer[:ANSWER_CHARS] + " …"
    lines = [f"Q: {traj.question}", f"A: {answer}"]
    read = sorted({p for s in traj.steps for p in s.paths} | {c.path for c in traj.citations})
    if read:
        lines.append("Read: " + ", ".join(read[:20]))
    if traj.outcome.edited_files:
        lines.append("Edited: " + ", ".join(sorted(set(traj.outcome.edited_files))))
    return "\n".join(lines)


def touched_paths(traj: Trajectory) -> set[str]:
    """Every path the session saw: step paths, citations and edits."""
    paths = {p for s in traj.steps for p in s.paths}
    paths |= {c.path for c in traj.citations}
    return paths | set(traj.outcome.edited_files)


def code_facts(conn: AnyConnection, corpus_id: int, root: Path, traj: Trajectory,
               when: str) -> CodeFacts:
    """Blob shas (index first, else the working tree), cited symbols and the commit."""
    paths = sorted(touched_paths(traj))
    blobs = _indexed_blobs(conn, corpus_id, paths)
    for path in paths:
        if path not in blobs:
            sha = _disk_blob(root, path)
            if sha is not None:
                blobs[path] = sha
    row = driver(conn).execute("SELECT git_head FROM corpora WHERE id = ?", (corpus_id,)).fetchone()
    commit = None if row is None else row[0]
    return CodeFacts(blobs, _cited_symbols(conn, corpus_id, traj), commit, when)


def _indexed_blobs(conn: AnyConnection, corpus_id: int, paths: list[str]) -> dict[str, str]:
    if not paths:
        return {}
    rows = driver(conn).execute(
        f"SELECT path, blob_sha FROM files WHERE corpus_id = ? AND path IN ({marks(paths)})",
        (corpus_id, *paths))
    return {r[0]: r[1] for r in rows}



def _disk_blob(root: Path, path: str) -> str | None:
    from peek.blobs import working_tree_sha

    if path.startswith(("/", "../")):
        return None
    return working_tree_sha(path, root)


def _cited_symbols(conn: AnyConnection, corpus_id: int, traj: Trajectory) -> dict[str, list[str]]:
    """The innermost definitions overlapping each citation (one query for all cited files)."""
    paths = sorted({c.path for c in traj.citations})
    if not paths:
        return {}
    spans = " OR ".join(["files.path = ? AND symbols.start_line <= ? AND symbols.end_line >= ?"]
                        * len(traj.citations))
    rows = driver(conn).execute(
        "SELECT files.path, symbols.qualname, symbols.start_line, symbols.end_line FROM symbols "
        "JOIN files ON files.id = symbols.file_id WHERE files.corpus_id = ? AND files.path IN "
        f"({marks(paths)}) AND ({spans})",
        (corpus_id, *paths, *(v for c in traj.citations for v in (c.path, c.end_line,
                                                                  c.start_line))))
    by_path: dict[str, list[tuple[int, int, str]]] = {}
    for path, name, start, end in rows:
        by_path.setdefault(path, []).append((end - start, start, name))
    found: dict[str, list[str]] = {}
    for c in traj.citations:
        overlapping = sorted(s for s in by_path.get(c.path, [])
                             if s[1] <= c.end_line and s[1] + s[0] >= c.start_line)
        names = [name for _, _, name in overlapping[:SYMBOLS_PER_CITATION]]
        if names:
            found.setdefault(c.path, [])
            found[c.path].extend(n for n in names if n not in found[c.path])
    return found
