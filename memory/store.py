"""Reading and writing memory rows: state, turns, windows, episodes and GSW nodes.

Vectors are stored as raw little-endian float32 bytes. The state's `version` changes on every
write, so in-process caches (the search index, entity vectors) know when to rebuild.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from peek.db import driver, marks
from peek.memory import fts
from peek.memory.embed import Embedder, restored_embedder
from peek.memory.models import NONE_ANSWER, TEXT_PREFIX, Entity, SpaceTimeNode, VerbPhrase
from peek.memory.text import norm_name
from peek.memory.turnbody import pack_turn, unpack_turn
from peek.packed import pack_text, unpack_text
from peek.text import ANALYSIS

if TYPE_CHECKING:
    import numpy as np

    from peek.db import AnyConnection

Node = Entity | VerbPhrase | SpaceTimeNode
_NODE_TYPES: dict[str, type[Entity] | type[VerbPhrase] | type[SpaceTimeNode]] = {
    "entity": Entity, "verb": VerbPhrase, "space": SpaceTimeNode, "time": SpaceTimeNode,
}


def pack(vector: np.ndarray) -> bytes:
    """A float32 vector as bytes for a BLOB column."""
    import numpy as np

    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def unpack(blob: bytes | None, dim: int) -> np.ndarray:
    """A stored vector (zeros when missing or of another size, e.g. after an embedder change)."""
    import numpy as np

    if blob is None or len(blob) != dim * 4:
        return np.zeros(dim, dtype=np.float32)
    return np.frombuffer(blob, dtype="<f4").copy()


def unpack_rows(blobs: list[bytes | None], dim: int) -> np.ndarray:
    """Stored vectors as one (n, dim) matrix."""
    import numpy as np

    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    size = dim * 4
    whole = [b for b in blobs if b is not None and len(b) == size]
    if len(whole) == len(blobs):  # one copy, not one per row
        return np.frombuffer(b"".join(whole), dtype="<f4").reshape(len(blobs), dim).copy()
    return np.stack([unpack(b, dim) for b in blobs])


@dataclass
class State:
    """The per-corpus memory state as loaded for one transaction."""

    corpus_id: int
    embedder_name: str
    dim: int
    version: int
    fitted_n: int
    embedder_state: bytes | None
    clustered_windows: int
    next_node: int
    analysis: int = ANALYSIS
    fresh: bool = False

    def embedder(self) -> Embedder:
        """The stored embedder with its fitted weights restored."""
        return restored_embedder(self.embedder_name, self.embedder_state)


_STATE_COLUMNS = ("embedder", "dim", "version", "fitted_n", "embedder_state",
                  "clustered_windows", "next_node", "analysis")
_INSERT_STATE = (f"INSERT INTO memory_state (corpus_id, {', '.join(_STATE_COLUMNS)}, updated_at) "
                 f"VALUES (:corpus_id, {', '.join(':' + c for c in _STATE_COLUMNS)}, :updated_at)")
_UPDATE_STATE = (f"UPDATE memory_state SET {', '.join(f'{c} = :{c}' for c in _STATE_COLUMNS)}, "
                 "updated_at = :updated_at WHERE corpus_id = :corpus_id")


def load_state(conn: AnyConnection, corpus_id: int) -> State | None:
    """The corpus's memory state, or None before anything was remembered."""
    row = driver(conn).execute(f"SELECT {', '.join(_STATE_COLUMNS)} FROM memory_state "
                               "WHERE corpus_id = ?", (corpus_id,)).fetchone()
    return None if row is None else State(corpus_id, *row)


def new_state(corpus_id: int, embedder: Embedder) -> State:
    """The state of a corpus that has no memory yet (saved by `save_state`)."""
    return State(corpus_id, embedder.name, embedder.dim, 0, 0, None, 0, 1, fresh=True)


def save_state(conn: AnyConnection, state: State) -> None:
    """Write the state back with a new version, so every cache of the old one is dropped."""
    state.version += 1
    values = {"embedder": state.embedder_name, "dim": state.dim, "version": state.version,
              "fitted_n": state.fitted_n, "embedder_state": state.embedder_state,
              "clustered_windows": state.clustered_windows, "next_node": state.next_node,
              "analysis": state.analysis, "updated_at": time.time()}
    driver(conn).execute(_INSERT_STATE if state.fresh else _UPDATE_STATE,
                         {"corpus_id": state.corpus_id, **values})
    state.fresh = False


def current_version(conn: AnyConnection, corpus_id: int) -> int | None:
    """The memory version alone (cheap), for cache checks."""
    row = driver(conn).execute("SELECT version FROM memory_state WHERE corpus_id = ?",
                               (corpus_id,)).fetchone()
    return None if row is None else int(row[0])


# --- turns ----------------------------------------------------------------------------------


@dataclass
class TurnRecord:
    """A stored turn as memory code uses it."""

    row_id: int
    turn_id: str
    seq: int
    speaker: str
    text: str
    time: str | None
    session: str | None
    source: str
    terms: list[str]
    blobs: dict[str, str]
    stale: bool
    window: int
    vector: bytes | None = field(default=None, repr=False)

    def line(self, limit: int | None = None) -> str:
        """The turn as one prompt line: `[id] (time) speaker: text`, marked when stale."""
        body = self.text if limit is None or len(self.text) <= limit else (
            self.text[:limit].rstrip() + " …")
        when = f" ({self.time})" if self.time else ""
        who = f" {self.speaker}:" if self.speaker else ""
        mark = " (stale: the code it cites changed; re-check)" if self.stale else ""
        return f"[{self.turn_id}]{when}{who} {body}{mark}".replace("\n", " ")


def turn_record(row: Any, vector: bytes | None = None) -> TurnRecord:
    """A TurnRecord from a row of `TURN_FIELDS` (the body unpacked)."""
    text, terms, blobs = unpack_turn(row[4], row[1])
    return TurnRecord(row[0], row[1], row[2], row[3], text, row[5], row[6], row[7],
                      terms.split(), blobs, bool(row[8]), row[9], vector)


#: the memory_turns columns `turn_record` reads, in its order
TURN_FIELDS = "id, turn_id, seq, speaker, body, time, session, source, stale, window"
_TURN_SQL = f"SELECT {TURN_FIELDS}{{}} FROM memory_turns WHERE corpus_id = ?"


def load_turns(conn: AnyConnection, corpus_id: int, with_vectors: bool = False,
               ) -> list[TurnRecord]:
    """Every turn of the corpus in chronological (seq) order (plain sqlite3: this reads many)."""
    sql = _TURN_SQL.format(", vector" if with_vectors else "") + " ORDER BY seq"
    rows = driver(conn).execute(sql, (corpus_id,))
    return [turn_record(r, r[10] if with_vectors else None) for r in rows]


def turns_in_windows(conn: AnyConnection, corpus_id: int, windows: list[int], first_seq: int = 0,
                     last_seq: int | None = None) -> list[TurnRecord]:
    """The turns of some windows, in seq order; seq bounds known to hold them all make it an
    indexed range read instead of a scan of every turn."""
    if not windows:
        return []
    sql = _TURN_SQL.format("") + (" AND seq >= ? AND seq <= ? AND window IN "
                                  "(SELECT value FROM json_each(?)) ORDER BY seq")
    top = (1 << 62) if last_seq is None else last_seq
    rows = driver(conn).execute(sql, (corpus_id, first_seq, top,
                                      json.dumps(sorted(set(windows)))))
    return [turn_record(r) for r in rows]


def existing_turn_ids(conn: AnyConnection, corpus_id: int, ids: list[str]) -> set[str]:
    """Which of these turn ids are already stored (ingest is idempotent)."""
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        batch = ids[start:start + 500]
        found.update(r[0] for r in driver(conn).execute(
            f"SELECT turn_id FROM memory_turns WHERE corpus_id = ? AND turn_id IN ({marks(batch)})",
            (corpus_id, *batch)))
    return found


def last_turn(conn: AnyConnection, corpus_id: int) -> TurnRecord | None:
    """The newest turn, to continue its window and its seq."""
    row = driver(conn).execute(_TURN_SQL.format("") + " ORDER BY seq DESC LIMIT 1",
                               (corpus_id,)).fetchone()
    return turn_record(row) if row else None


def window_size(conn: AnyConnection, corpus_id: int, window: int) -> int:
    """How many turns a window holds (counted from its stored first seq: an indexed range)."""
    row = driver(conn).execute(
        "SELECT COUNT(*) FROM memory_turns WHERE corpus_id = ? AND window = ? AND seq >= "
        "COALESCE((SELECT first_seq FROM memory_windows WHERE corpus_id = ? AND idx = ?), 0)",
        (corpus_id, window, corpus_id, window)).fetchone()
    return int(row[0])


def insert_turns(conn: AnyConnection, corpus_id: int, rows: list[dict[str, Any]]) -> None:
    """Add new turns (dicts with the MemoryTurnRow columns but id and corpus_id)."""
    if rows:
        driver(conn).executemany(_INSERT_TURN, [{"corpus_id": corpus_id, **r} for r in rows])


_TURN_VALUES = ("turn_id", "seq", "speaker", "time", "session", "source", "vector", "stale",
                "window", "body")
_INSERT_TURN = (f"INSERT INTO memory_turns (corpus_id, {', '.join(_TURN_VALUES)}) "
                f"VALUES (:corpus_id, {', '.join(':' + c for c in _TURN_VALUES)})")


def set_turn_vectors(conn: AnyConnection, corpus_id: int, vectors: dict[int, bytes]) -> None:
    """Store re-embedded turn vectors by row id (one prepared statement for all rows)."""
    driver(conn).executemany("UPDATE memory_turns SET vector = ? WHERE id = ? AND corpus_id = ?",
                             [(blob, row_id, corpus_id) for row_id, blob in vectors.items()])


# --- windows and episodes -------------------------------------------------------------------


@dataclass
class WindowRecord:
    """A stored window."""

    idx: int
    first_seq: int
    last_seq: int
    session: str | None
    vector: bytes | None
    episode: int | None


def set_turn_terms(conn: AnyConnection, corpus_id: int,
                   changed: list[tuple[TurnRecord, str]]) -> None:
    """Store re-analysed terms of turns (their text and blobs kept; one prepared statement)."""
    driver(conn).executemany("UPDATE memory_turns SET body = ? WHERE id = ? AND corpus_id = ?",
                             [(pack_turn(t.text, new, t.blobs), t.row_id, corpus_id)
                              for t, new in changed])


def load_windows(conn: AnyConnection, corpus_id: int) -> list[WindowRecord]:
    """Every window in order."""
    rows = driver(conn).execute(
        "SELECT idx, first_seq, last_seq, session, vector, episode FROM memory_windows "
        "WHERE corpus_id = ? ORDER BY idx", (corpus_id,))
    return [WindowRecord(r[0], r[1], r[2], r[3], window_vector(r[4]), r[5]) for r in rows]


def window_spans(conn: AnyConnection, corpus_id: int) -> list[WindowRecord]:
    """Every stored window without its vector (inflating thousands of vectors per batch to
    read a few is what grew with memory)."""
    rows = driver(conn).execute("SELECT idx, first_seq, last_seq, session, episode FROM "
                                "memory_windows WHERE corpus_id = ? ORDER BY idx", (corpus_id,))
    return [WindowRecord(r[0], r[1], r[2], r[3], None, r[4]) for r in rows]


def window_blob(vector: bytes | None) -> bytes | None:
    """A window vector as stored: deflated float32 bytes, lossless; a window of a few turns
    embedded by the hash embedder is mostly zeros (4 KB raw, ~0.7 KB stored)."""
    import zlib

    return None if vector is None else zlib.compress(vector, 6)


def window_vector(blob: bytes | None) -> bytes | None:
    """The float32 bytes of a stored window vector."""
    import zlib

    return None if blob is None else zlib.decompress(blob)


def save_windows(conn: AnyConnection, corpus_id: int, windows: list[WindowRecord]) -> None:
    """Insert or replace windows."""
    if windows:
        driver(conn).executemany(
            "INSERT INTO memory_windows (corpus_id, idx, first_seq, last_seq, session, vector, "
            "episode) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (corpus_id, idx) DO UPDATE SET "
            "first_seq = excluded.first_seq, last_seq = excluded.last_seq, "
            "session = excluded.session, vector = excluded.vector, episode = excluded.episode",
            [(corpus_id, w.idx, w.first_seq, w.last_seq, w.session, window_blob(w.vector),
              w.episode) for w in windows])


@dataclass
class EpisodeRecord:
    """A stored episode."""

    id: int
    centroid: bytes
    size: int
    medoids: list[int]
    prefix: str
    prefix_sha256: str
    tokens: int


def load_episodes(conn: AnyConnection, corpus_id: int) -> list[EpisodeRecord]:
    """Every episode by id."""
    rows = driver(conn).execute(
        "SELECT id, centroid, size, medoids, prefix, prefix_sha256, tokens FROM memory_episodes "
        "WHERE corpus_id = ? ORDER BY id", (corpus_id,))
    return [EpisodeRecord(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6]) for r in rows]


def episode_count(conn: AnyConnection, corpus_id: int) -> int:
    """How many episodes a corpus has."""
    row = driver(conn).execute("SELECT count(*) FROM memory_episodes WHERE corpus_id = ?",
                               (corpus_id,)).fetchone()
    return int(row[0] or 0)


def replace_episodes(conn: AnyConnection, corpus_id: int, episodes: list[EpisodeRecord],
                     everything: bool) -> None:
    """Write episodes; `everything` drops the old set first (after a full re-clustering)."""
    raw = driver(conn)
    ids = [e.id for e in episodes]
    if everything:
        raw.execute("DELETE FROM memory_episodes WHERE corpus_id = ?", (corpus_id,))
    elif ids:
        raw.execute(f"DELETE FROM memory_episodes WHERE corpus_id = ? AND id IN ({marks(ids)})",
                    (corpus_id, *ids))
    if episodes:
        raw.executemany(_INSERT_EPISODE, [
            {"corpus_id": corpus_id, "id": e.id, "centroid": e.centroid, "size": e.size,
             "medoids": json.dumps(e.medoids), "prefix": e.prefix,
             "prefix_sha256": e.prefix_sha256, "tokens": e.tokens} for e in episodes])


# --- GSW nodes ------------------------------------------------------------------------------


_EPISODE_COLUMNS = ("corpus_id", "id", "centroid", "size", "medoids", "prefix", "prefix_sha256",
                    "tokens")
_INSERT_EPISODE = (f"INSERT INTO memory_episodes ({', '.join(_EPISODE_COLUMNS)}) "
                   f"VALUES ({', '.join(':' + c for c in _EPISODE_COLUMNS)})")


def node_kind(node: Node) -> str:
    """The stored kind of a node."""
    if isinstance(node, Entity):
        return "entity"
    if isinstance(node, VerbPhrase):
        return "verb"
    return node.kind


def node_name(node: Node) -> str:
    """The display name of a node."""
    if isinstance(node, Entity):
        return node.name
    if isinstance(node, VerbPhrase):
        return node.phrase
    return node.current_name


def node_key(node: Node) -> str:
    """The exact-match key; files keep their path so that a.py and a_py never merge."""
    if isinstance(node, Entity) and node.kind in ("file", "config", "symbol"):
        return node.kind + ":" + node.name
    if isinstance(node, VerbPhrase):
        return verb_key(node)
    return norm_name(node_name(node))


def key_digest(key: str) -> str:
    """What the `norm` column holds for a key: 16 hex digits of its BLAKE2b digest, so the
    column and its index stay small (a file or symbol key is its whole path); look-ups by
    digest keep only the nodes whose own key is the one asked for."""
    return hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest()


def verb_key(verb: VerbPhrase) -> str:
    """Phrase plus a digest of its TEXT answers: only verbs that say the same thing can merge."""
    texts = sorted(f"{q.head}={a}" for q in verb.questions for a in q.answers
                   if a.startswith(TEXT_PREFIX))
    if not texts:
        return norm_name(verb.phrase) + ":"
    digest = hashlib.sha1("\n".join(texts).encode("utf-8")).hexdigest()[:16]
    return norm_name(verb.phrase) + ":" + digest


def node_from_json(kind: str, data: bytes) -> Node:
    """A stored node from its kind and packed JSON."""
    return _NODE_TYPES[kind].model_validate_json(unpack_text(data))


def _entity(data: bytes) -> Entity:
    return Entity.model_validate_json(unpack_text(data))


def _verb(data: bytes) -> VerbPhrase:
    return VerbPhrase.model_validate_json(unpack_text(data))


def load_nodes(conn: AnyConnection, corpus_id: int, kind: str | None = None) -> list[Node]:
    """Stored GSW nodes (optionally of one kind), oldest first."""
    sql = "SELECT kind, data FROM memory_nodes WHERE corpus_id = ?"
    params: tuple[Any, ...] = (corpus_id,)
    if kind is not None:
        sql, params = sql + " AND kind = ?", (corpus_id, kind)
    rows = driver(conn).execute(sql + " ORDER BY seq, id", params)
    return [node_from_json(k, data) for k, data in rows]


def entity_vectors(conn: AnyConnection, corpus_id: int, dim: int) -> tuple[list[str], np.ndarray]:
    """Entity ids and their stored vectors, for the embedding resolver's faiss index."""
    rows = driver(conn).execute(
        "SELECT id, vector FROM memory_nodes WHERE corpus_id = ? AND kind = ? AND vector IS NOT "
        "NULL ORDER BY id", (corpus_id, "entity")).fetchall()
    return [r[0] for r in rows], unpack_rows([r[1] for r in rows], dim)


def entities_by_key(conn: AnyConnection, corpus_id: int, keys: list[str]) -> list[Entity]:
    """Stored entities whose exact-match key is one of `keys`."""
    found: list[Entity] = []
    wanted = set(keys)
    for start in range(0, len(keys), 500):
        digests = [key_digest(k) for k in keys[start:start + 500]]
        rows = driver(conn).execute(
            "SELECT data FROM memory_nodes WHERE corpus_id = ? AND kind = ? AND norm IN "
            f"({marks(digests)})", (corpus_id, "entity", *digests))
        found.extend(e for e in (_entity(r[0]) for r in rows) if node_key(e) in wanted)
    return found


def nodes_by_id(conn: AnyConnection, corpus_id: int, ids: list[str]) -> list[Node]:
    """Stored nodes by id."""
    found: list[Node] = []
    for start in range(0, len(ids), 500):
        batch = ids[start:start + 500]
        rows = driver(conn).execute(
            f"SELECT kind, data FROM memory_nodes WHERE corpus_id = ? AND id IN ({marks(batch)})",
            (corpus_id, *batch))
        found.extend(node_from_json(k, d) for k, d in rows)
    return found


def save_nodes(conn: AnyConnection, corpus_id: int, nodes: list[Node],
               vectors: dict[str, bytes] | None = None) -> None:
    """Insert or replace nodes (vectors by node id, kept when not given)."""
    if not nodes:
        return
    vectors = vectors or {}
    verbs = [n for n in nodes if isinstance(n, VerbPhrase)]
    raw = driver(conn)
    raw.executemany(_UPSERT_NODE, [_node_row(corpus_id, n, vectors.get(n.id)) for n in nodes])
    save_edges(conn, corpus_id, verbs)
    if verbs and fts.exists(raw, corpus_id):
        refs = fts.node_refs(raw, corpus_id, [v.id for v in verbs])
        fts.index_verbs(raw, corpus_id, [(refs[i], v.model_dump()) for i, v in
                                         enumerate(verbs)])


def verb_edges(verb: VerbPhrase) -> list[str]:
    """The node ids a verb's answers name (not TEXT spans, not None)."""
    return sorted({a for q in verb.questions for a in q.answers
                   if a != NONE_ANSWER and not a.startswith(TEXT_PREFIX)})


def save_edges(conn: AnyConnection, corpus_id: int, verbs: list[VerbPhrase]) -> None:
    """Replace the edge rows of these verbs (plain prepared statements: this runs per record)."""
    if not verbs:
        return
    raw = driver(conn)
    raw.executemany("DELETE FROM memory_edges WHERE corpus_id = ? AND verb_id = ?",
                    [(corpus_id, v.id) for v in verbs])
    rows = [(corpus_id, v.id, node, any(q.is_open for q in v.questions), v.seq)
            for v in verbs for node in verb_edges(v)]
    if rows:
        raw.executemany("INSERT INTO memory_edges (corpus_id, verb_id, node_id, open, seq) "
                        "VALUES (?, ?, ?, ?, ?)", rows)


_NODE_COLUMNS = ("corpus_id", "id", "kind", "name", "norm", "data", "vector", "seq", "stale",
                 "cites", "entity_kind")
#: A node is updated in place, so it keeps its row (and SQLite rowid, which keys its verb
#: document): a delete and insert leaves a hole in an old page per rewrite (~40 % of the
#: table's pages were empty space after 300 code sessions). A vector not given is kept.
_UPSERT_NODE = (
    f"INSERT INTO memory_nodes ({', '.join(_NODE_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_NODE_COLUMNS))}) ON CONFLICT (corpus_id, id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _NODE_COLUMNS[2:] if c != "vector")
    + ", vector = COALESCE(excluded.vector, memory_nodes.vector)")


def _node_row(corpus_id: int, node: Node, vector: bytes | None) -> tuple[Any, ...]:
    stale = bool(getattr(node, "stale", False)) or (
        isinstance(node, Entity) and bool(node.roles) and all(r.stale for r in node.roles))
    return (corpus_id, node.id, node_kind(node), node_name(node), key_digest(node_key(node)),
            pack_text(node.model_dump_json(exclude_defaults=True)), vector, node.seq, stale,
            cites_code(node), node.kind if isinstance(node, Entity) else None)


def cites_code(node: Node) -> bool:
    """Whether any evidence of the node names a file's blob (what invalidation re-checks)."""
    if isinstance(node, Entity):
        return any(r.blobs for r in node.roles)
    return isinstance(node, VerbPhrase) and bool(node.blobs)


def verbs_by_key(conn: AnyConnection, corpus_id: int, key: str, entity_ids: list[str],
                 ) -> list[VerbPhrase]:
    """Stored verbs with this key whose answers name every one of `entity_ids` (candidates)."""
    if not entity_ids:
        return []
    raw = driver(conn)
    digest, wanted = key_digest(key), len(set(entity_ids))
    # the verb's answers name every entity asked for
    covers = ("n.kind = 'verb' AND n.norm = ? AND (SELECT COUNT(*) FROM memory_edges e WHERE "
              "e.corpus_id = n.corpus_id AND e.verb_id = n.id AND e.node_id IN "
              f"({','.join('?' * len(entity_ids))})) = ? ORDER BY n.seq")
    if _bounded_count(raw, "memory_nodes WHERE corpus_id = ? AND norm = ?",
                      (corpus_id, digest)) < KEY_SCAN_CAP:
        rows = raw.execute(  # few verbs say this: start from the key (an index range)
            f"SELECT n.data FROM memory_nodes n WHERE n.corpus_id = ? AND {covers}",
            (corpus_id, digest, *entity_ids, wanted))
    else:
        rarest = min(entity_ids, key=lambda i: _edge_count(raw, corpus_id, i))
        rows = raw.execute(
            "SELECT n.data FROM memory_edges r CROSS JOIN memory_nodes n "  # SQLite: r drives
            "WHERE n.corpus_id = r.corpus_id AND n.id = r.verb_id "
            f"AND r.corpus_id = ? AND r.node_id = ? AND {covers}",
            (corpus_id, rarest, digest, *entity_ids, wanted))
    return [v for v in (_verb(r[0]) for r in rows) if verb_key(v) == key]


KEY_SCAN_CAP = 64


def _bounded_count(raw: Any, rows: str, params: tuple[Any, ...]) -> int:
    """How many rows match, counting no further than KEY_SCAN_CAP (an index-only probe)."""
    return int(raw.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {rows} LIMIT {KEY_SCAN_CAP}) AS n",
                           params).fetchone()[0])


def _edge_count(raw: Any, corpus_id: int, node_id: str) -> int:
    """How many verbs name a node (an index-only count), to start a look-up from the rarest:
    the agent of a code session is in every verb, its file in a few."""
    return int(raw.execute("SELECT COUNT(*) FROM memory_edges WHERE corpus_id = ? AND node_id = ?",
                           (corpus_id, node_id)).fetchone()[0])


def open_verbs_about(conn: AnyConnection, corpus_id: int, entity_ids: list[str],
                     ) -> list[VerbPhrase]:
    """Stored verbs that mention these entities and still have an open question (edge look-up)."""
    if not entity_ids:
        return []
    marks = ",".join("?" * len(entity_ids))
    rows = driver(conn).execute(
        "SELECT data FROM memory_nodes WHERE corpus_id = ? AND id IN (SELECT verb_id FROM "
        f"memory_edges WHERE corpus_id = ? AND open = TRUE AND node_id IN ({marks})) "
        "ORDER BY seq, id",
        (corpus_id, corpus_id, *entity_ids))
    return [_verb(r[0]) for r in rows]


def spacetime_by_key(conn: AnyConnection, corpus_id: int, kind: str, key: str,
                     ) -> SpaceTimeNode | None:
    """The stored space or time node with this name key."""
    rows = driver(conn).execute(
        "SELECT data FROM memory_nodes WHERE corpus_id = ? AND kind = ? AND norm = ? ORDER BY seq",
        (corpus_id, kind, key_digest(key)))
    nodes = (SpaceTimeNode.model_validate_json(unpack_text(r[0])) for r in rows)
    return next((n for n in nodes if node_key(n) == key), None)
