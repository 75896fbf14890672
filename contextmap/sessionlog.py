"""The trajectories of the map's session log (`map_sessions`), stored once.

A session asked through peek already keeps its trajectory in `agent_sessions`; the policy then
learns from that trajectory plus the reported outcome. Logging a second copy cost about a
kilobyte per session, so the log keeps a reference instead: `{"agent_session": ID, "outcome":
{...}}`, written only when the stored trajectory with that outcome is exactly the one learned
from. Anything else (a host's own trajectory, one that differs) is logged in full. Records are
packed JSON (`peek.packed`); the only thing that rewrites a stored trajectory (a resumed ask)
first turns the references to it into full copies (`materialize`).
"""

from __future__ import annotations

import json
import zlib
from typing import TYPE_CHECKING, Any

from peek.db import driver
from peek.packed import pack_json, pack_text, unpack_json, unpack_text

if TYPE_CHECKING:
    from peek.contextmap.trajectory import Trajectory
    from peek.db import AnyConnection

_REFERENCE = frozenset({"agent_session", "outcome"})
_ZLIB = b"\x78"  # the first byte of a zlib stream: a record written before revision 0011
_AGENT_TRAJECTORY = "SELECT trajectory FROM agent_sessions WHERE id = ? AND corpus_id = ?"


def log_record(conn: AnyConnection, corpus_id: int, session: str, traj: Trajectory) -> bytes:
    """What `map_sessions.trajectory` stores for a learned trajectory: a reference to the
    session's own stored trajectory when that, with this outcome, is exactly `traj`."""
    text = traj.model_dump_json()
    outcome = traj.outcome.model_dump(mode="json")
    row = driver(conn).execute(_AGENT_TRAJECTORY, (session, corpus_id)).fetchone()
    if row is not None and _same(unpack_text(row[0]), outcome, text):
        return pack_json({"agent_session": session, "outcome": outcome})
    return pack_text(text)


def _same(stored: str, outcome: dict[str, Any], text: str) -> bool:
    from peek.contextmap.errors import TrajectoryError

    try:
        return _with_outcome(stored, outcome) == text
    except TrajectoryError:  # a session still running has no valid trajectory yet
        return False


def logged_trajectory(conn: AnyConnection, corpus_id: int, record: bytes) -> str:
    """The trajectory JSON a session log record stands for (as `Trajectory.model_dump_json`)."""
    data = bytes(record)
    if data[:1] == _ZLIB:  # written before revision 0011: zlib JSON
        return zlib.decompress(data).decode("utf-8")
    value = _reference(data)
    if value is None:
        return unpack_text(data)
    row = driver(conn).execute(_AGENT_TRAJECTORY, (value["agent_session"], corpus_id)).fetchone()
    if row is None:
        from peek.errors import StoreError

        raise StoreError(f"the map's session log names session {value['agent_session']}, "
                         "which is not stored", "restore the store from a backup")
    return _with_outcome(unpack_text(row[0]), value["outcome"])


def materialize(conn: AnyConnection, corpus_id: int, session: str) -> None:
    """Turn the log's references to a session into full copies, before its stored trajectory
    is rewritten (a resumed ask), so the log keeps what was learned from."""
    raw = driver(conn)
    rows = raw.execute("SELECT id, trajectory FROM map_sessions WHERE corpus_id = ? AND "
                       "session = ?", (corpus_id, session)).fetchall()
    full = [(pack_text(logged_trajectory(raw, corpus_id, blob)), row_id)
            for row_id, blob in rows if _reference(bytes(blob)) is not None]
    if full:
        raw.executemany("UPDATE map_sessions SET trajectory = ? WHERE id = ?", full)


def _reference(data: bytes) -> dict[str, Any] | None:
    """The reference a record holds, or None for a full copy (packed, or zlib before 0011)."""
    if data[:1] == _ZLIB:
        return None
    value = unpack_json(data)
    return value if isinstance(value, dict) and set(value) == _REFERENCE else None


def _with_outcome(stored: str, outcome: dict[str, Any]) -> str:
    """A stored agent trajectory, as the policy parses it, with this outcome."""
    from peek.contextmap.trajectory import Outcome, parse_trajectory

    traj = parse_trajectory(json.loads(stored))
    return traj.model_copy(update={"outcome": Outcome.model_validate(outcome)}).model_dump_json()
