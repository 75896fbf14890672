"""What one `ask` produces and keeps: budgets, the result, and the stored session."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from peek.contextmap.citation import Citation
from peek.db import Database
from peek.errors import PeekError, shown
from peek.packed import pack_text, unpack_text


@dataclass(frozen=True, slots=True)
class Budgets:
    """Limits on one session; reaching one stops it cleanly with the best partial answer."""

    max_steps: int = 12
    max_tokens: int | None = None
    max_cost: float | None = None


@dataclass(slots=True)
class AskResult:
    """The `peek ask --json` contract, plus why the session stopped."""

    answer: str
    citations: list[Citation]
    steps: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    model: str
    session: str
    map_version: int
    stopped_by: str | None = None
    trajectory: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Exactly the documented JSON shape (with `stopped_by` added)."""
        return {
            "answer": self.answer,
            "citations": [asdict(c) for c in self.citations],
            "steps": self.steps,
            "tokens": {"input": self.input_tokens, "output": self.output_tokens},
            "cost_usd": self.cost_usd,
            "model": self.model,
            "session": self.session,
            "map_version": self.map_version,
            "stopped_by": self.stopped_by,
        }


@dataclass(frozen=True, slots=True)
class StoredSession:
    """One row of `agent_sessions` (the table is declared in `peek.agent.tables`)."""

    id: str
    corpus_id: int
    question: str
    model: str
    status: str  # running | done | stopped | failed
    stopped_by: str | None
    trajectory: str  # JSON, the contextmap Trajectory shape (stored packed, see `peek.packed`)
    result: str | None  # JSON, AskResult.to_dict() (stored packed)
    created_at: float
    updated_at: float
    steps: int
    ranking: bytes | None  # zlib JSON: ranked candidates


_COLUMNS = tuple(f.name for f in fields(StoredSession))
_ROW_COLUMNS = _COLUMNS[:-1]  # the ranking has its own table (`agent_rankings`)
_INSERT = (f"INSERT INTO agent_sessions ({', '.join(_ROW_COLUMNS)}) "
           f"VALUES ({', '.join(':' + c for c in _ROW_COLUMNS)})")
_INSERT_RANKING = "INSERT INTO agent_rankings (session_id, ranking) VALUES (:id, :ranking)"
_SELECT = (f"SELECT {', '.join('s.' + c for c in _ROW_COLUMNS)}, r.ranking FROM agent_sessions s "
           "LEFT JOIN agent_rankings r ON r.session_id = s.id WHERE s.id = :id AND "
           "s.corpus_id = :c")


def _packed(value: dict[str, Any]) -> bytes:
    """A trajectory or result as stored: packed JSON, a quarter of its text (read outputs and
    answers repeat the corpus's words)."""
    return pack_text(json.dumps(value))


#: result fields that repeat the trajectory's (the answer, its citations): stored once, the
#: result keeps a marker in their place
_FROM_TRAJECTORY = ("answer", "citations")
_MARK = "$trajectory"


def pack_result(result: dict[str, Any], trajectory: dict[str, Any]) -> bytes:
    """A result as stored: packed, without the answer and citations the trajectory holds."""
    return _packed({k: {_MARK: k} if k in _FROM_TRAJECTORY and trajectory.get(k, _MARK) == v
                    else v for k, v in result.items()})


def result_text(record: bytes, trajectory: str) -> str:
    """A stored result's JSON with the fields it shares with the trajectory put back."""
    text = unpack_text(record)
    value = json.loads(text)
    marked = {k for k, v in value.items() if isinstance(v, dict) and v.keys() == {_MARK}}
    if not marked:
        return text
    traj = json.loads(trajectory)
    return json.dumps({k: traj[value[k][_MARK]] if k in marked else v for k, v in value.items()})


def new_session_id() -> str:
    """A short random id that people can type (`peek ask --resume ID`)."""
    return uuid.uuid4().hex[:12]


class SessionStore:
    """Stored sessions of one corpus: created at the start of an ask, finished at its end."""

    def __init__(self, db: Database, corpus_id: int) -> None:
        self.db = db
        self.corpus_id = corpus_id

    def start(self, session: str, question: str, model: str) -> None:
        """Record a session as running, so a crash still leaves a trace."""
        now = time.time()
        row = {"id": session, "corpus_id": self.corpus_id, "question": question, "model": model,
               "status": "running", "stopped_by": None, "trajectory": _packed(
                   {"question": question, "steps": [], "answer": ""}),
               "result": None, "created_at": now, "updated_at": now, "steps": 0}
        with self.db.raw_write() as conn:
            conn.execute(_INSERT, row)

    def finish(self, result: AskResult) -> None:
        """Store the final (or partial) result and its trajectory."""
        from peek.contextmap.sessionlog import materialize

        status = "stopped" if result.stopped_by else "done"
        values = {"status": status, "stopped_by": result.stopped_by,
                  "trajectory": _packed(result.trajectory),
                  "result": pack_result(result.to_dict(), result.trajectory),
                  "updated_at": time.time(), "steps": result.steps}
        with self.db.raw_write() as conn:
            materialize(conn, self.corpus_id, result.session)  # the map's log keeps its copy
            conn.execute(
                "UPDATE agent_sessions SET status = :status, stopped_by = :stopped_by, "
                "trajectory = :trajectory, result = :result, updated_at = :updated_at, "
                "steps = :steps WHERE id = :id", {**values, "id": result.session})

    def save(self, result: AskResult, question: str, model: str,
             ranking: bytes | None = None) -> None:
        """Store a session that finished in one go (the offline policy), in one write."""
        now = time.time()
        status = "stopped" if result.stopped_by else "done"
        row = {"id": result.session, "corpus_id": self.corpus_id, "question": question,
               "model": model, "status": status, "stopped_by": result.stopped_by,
               "trajectory": _packed(result.trajectory),
               "result": pack_result(result.to_dict(), result.trajectory),
               "created_at": now, "updated_at": now,
               "steps": result.steps}
        with self.db.raw_write() as conn:
            conn.execute(_INSERT, row)
            if ranking is not None:
                conn.execute(_INSERT_RANKING, {"id": result.session, "ranking": ranking})

    def load(self, session: str) -> StoredSession:
        """A stored session of this corpus, or a PeekError naming how to find one."""
        with self.db.query() as conn:
            row = conn.execute(_SELECT, {"id": session, "c": self.corpus_id}).fetchone()
        if row is None:
            named = repr(session) if len(session) <= 60 else shown(session)
            raise PeekError(f"no session {named} for this corpus",
                            "see the `session` field of `peek ask --json`")
        values = list(row)
        at = _COLUMNS.index("trajectory")
        values[at] = unpack_text(values[at])
        if values[at + 1] is not None:
            values[at + 1] = result_text(values[at + 1], values[at])
        return StoredSession(*values)

    def trajectory(self, session: str) -> dict[str, Any]:
        """The stored trajectory of a session, as the context-map contract's dict."""
        return dict(json.loads(self.load(session).trajectory))


def stored_ranking(conn: Any, corpus_id: int, session: str) -> bytes | None:
    """The candidates a session's ask scored (zlib JSON, `peek.agent.localize.pack`), if any."""
    from peek.db import driver

    row = driver(conn).execute(
        "SELECT r.ranking FROM agent_rankings r JOIN agent_sessions s ON s.id = r.session_id "
        "WHERE r.session_id = ? AND s.corpus_id = ?", (session, corpus_id)).fetchone()
    return None if row is None else bytes(row[0])
