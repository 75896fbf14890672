"""EpiCache at the application layer: windows → embeddings → k-means episodes → byte-stable blocks.

Windows of up to WINDOW_TURNS consecutive turns of one session are embedded and clustered with
faiss k-means into E episodes. Each episode keeps its centroid (not re-normalized, as EpiCache
routes by the raw dot product) and its medoids: the windows closest to the centroid, re-sorted
chronologically. Their turns, within EPISODE_TOKENS, form the episode's prompt block. The block
is a pure function of the stored turns (fixed formatting, sorted, no clock), so the same episode
always yields the same bytes and a serving engine's prefix cache can reuse it. New windows join
the nearest episode; the whole set is re-clustered when it has grown by REGROW.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from typing import TYPE_CHECKING

from peek.db import driver
from peek.memory.store import (
    EpisodeRecord,
    State,
    TurnRecord,
    WindowRecord,
    load_episodes,
    load_windows,
    pack,
    replace_episodes,
    turns_in_windows,
    unpack,
    unpack_rows,
    window_vector,
)
from peek.tokens import count_tokens

if TYPE_CHECKING:
    import numpy as np

    from peek.db import AnyConnection

WINDOW_TURNS = 4
WINDOWS_PER_EPISODE = 40
MAX_EPISODES = 8
N_MEDOIDS = 8
EPISODE_TOKENS = 1024
LINE_CHARS = 400
REGROW = 1.5
KMEANS_SEED = 1234
KMEANS_ITERATIONS = 25


def target_episodes(n_windows: int) -> int:
    """E grows with the material: one episode per WINDOWS_PER_EPISODE windows, at most 8."""
    return max(1, min(MAX_EPISODES, math.ceil(n_windows / WINDOWS_PER_EPISODE)))


def kmeans(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(centroids, labels) from faiss k-means with a fixed seed and one thread (deterministic)."""
    import numpy as np

    data = np.ascontiguousarray(vectors, dtype=np.float32)
    if k <= 1 or len(data) <= 1:
        return data.mean(axis=0, keepdims=True), np.zeros(len(data), dtype=np.int64)
    import faiss  # only a real clustering needs it (~40 ms to import)

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        km = faiss.Kmeans(data.shape[1], k, niter=KMEANS_ITERATIONS, seed=KMEANS_SEED,
                          min_points_per_centroid=1, max_points_per_centroid=1 << 20,
                          verbose=False)
        km.train(data)
        _, labels = km.index.search(data, 1)
    finally:
        faiss.omp_set_num_threads(threads)
    return np.asarray(km.centroids, dtype=np.float32), labels[:, 0].astype(np.int64)


def _stable_order(labels: np.ndarray) -> dict[int, int]:
    """Cluster label → episode id, numbered by each cluster's earliest window (label-free ids)."""
    first: dict[int, int] = {}
    for position, label in enumerate(labels.tolist()):
        first.setdefault(int(label), position)
    return {label: rank for rank, label in enumerate(sorted(first, key=first.__getitem__))}


def needs_rebuild(n_windows: int, state: State, n_episodes: int) -> bool:
    """Re-cluster everything when there are no episodes yet or the windows grew by REGROW."""
    if n_episodes == 0:
        return n_windows > 0
    return n_windows >= REGROW * max(1, state.clustered_windows)


def rebuild(conn: AnyConnection, state: State, windows: list[WindowRecord] | None = None,
            ) -> list[EpisodeRecord]:
    """Cluster every window into episodes and rebuild every block."""
    import numpy as np

    windows = load_windows(conn, state.corpus_id) if windows is None else windows
    if not windows:
        replace_episodes(conn, state.corpus_id, [], everything=True)
        return []
    matrix = unpack_rows([w.vector for w in windows], state.dim)
    centroids, labels = kmeans(matrix, min(target_episodes(len(windows)), len(windows)))
    order = _stable_order(labels)
    moved = []
    for window, label in zip(windows, labels.tolist(), strict=True):
        if window.episode != order[int(label)]:
            window.episode = order[int(label)]
            moved.append(window)
    set_episodes(conn, state.corpus_id, moved)
    members = _members(windows)
    episodes = [_episode(conn, state, eid, np.asarray(centroids[label]), members[eid])
                for label, eid in sorted(order.items(), key=lambda kv: kv[1])]
    replace_episodes(conn, state.corpus_id, episodes, everything=True)
    state.clustered_windows = len(windows)
    return episodes


def assign(conn: AnyConnection, state: State, changed: list[int],
           windows: list[WindowRecord], lost: set[int] | None = None) -> list[EpisodeRecord]:
    """Put new or grown windows in their nearest episode and rebuild only the touched blocks
    (and those of the episodes in `lost`, which lost windows)."""
    import numpy as np

    episodes = {e.id: e for e in load_episodes(conn, state.corpus_id)}
    by_idx = {w.idx: w for w in windows}
    ids = sorted(episodes)
    centroids = np.stack([unpack(episodes[i].centroid, state.dim) for i in ids])
    touched = {by_idx[i].episode for i in changed if i in by_idx} | (lost or set())
    touched.discard(None)
    for idx in changed:
        window = by_idx[idx]
        window.episode = ids[int(np.argmax(centroids @ unpack(window.vector, state.dim)))]
        touched.add(window.episode)
    set_episodes(conn, state.corpus_id, [by_idx[i] for i in changed if i in by_idx])
    members = _members(windows)
    _load_vectors(conn, state.corpus_id, [w for e in touched if e is not None
                                          for w in members.get(e, []) if w.vector is None])
    rebuilt = []
    for eid in sorted(e for e in touched if e is not None):
        if members.get(eid):
            matrix = unpack_rows([w.vector for w in members[eid]], state.dim)
            rebuilt.append(_episode(conn, state, eid, matrix.mean(axis=0), members[eid], matrix))
    replace_episodes(conn, state.corpus_id, rebuilt, everything=False)
    return rebuilt


def drop(conn: AnyConnection, corpus_id: int, windows: list[WindowRecord]) -> set[int]:
    """Delete windows left without turns and the episodes left without windows; the episodes
    that lost a window and still have others."""
    if not windows:
        return set()
    listed = json.dumps(sorted(w.idx for w in windows))
    raw = driver(conn)
    raw.execute("DELETE FROM memory_windows WHERE corpus_id = ? AND idx IN "
                "(SELECT value FROM json_each(?))", (corpus_id, listed))
    lost = {w.episode for w in windows if w.episode is not None}
    left = {r[0] for r in raw.execute(
        "SELECT DISTINCT episode FROM memory_windows WHERE corpus_id = ? AND episode IN "
        "(SELECT value FROM json_each(?))", (corpus_id, json.dumps(sorted(lost))))}
    raw.execute("DELETE FROM memory_episodes WHERE corpus_id = ? AND id IN "
                "(SELECT value FROM json_each(?))", (corpus_id, json.dumps(sorted(lost - left))))
    return lost & left


def refresh(conn: AnyConnection, state: State, episode_ids: set[int]) -> None:
    """Re-render the blocks of some episodes in place (their turns changed, e.g. went stale)."""
    episodes = {e.id: e for e in load_episodes(conn, state.corpus_id)}
    members = _members(load_windows(conn, state.corpus_id))
    rebuilt = [_episode(conn, state, eid, unpack(episodes[eid].centroid, state.dim), members[eid])
               for eid in sorted(episode_ids) if eid in episodes and members.get(eid)]
    replace_episodes(conn, state.corpus_id, rebuilt, everything=False)


def set_episodes(conn: AnyConnection, corpus_id: int, windows: list[WindowRecord]) -> None:
    """Store the episode of stored windows: only the label changes, so their vectors are not
    deflated and written again."""
    if windows:
        driver(conn).executemany(
            "UPDATE memory_windows SET episode = ? WHERE corpus_id = ? AND idx = ?",
            [(w.episode, corpus_id, w.idx) for w in windows])


def _load_vectors(conn: AnyConnection, corpus_id: int, windows: list[WindowRecord]) -> None:
    """Read the stored vectors of windows loaded without them (by key: only the episodes a
    batch touches are inflated, not every window of memory)."""
    if not windows:
        return
    by_idx = {w.idx: w for w in windows}
    rows = driver(conn).execute(
        "SELECT idx, vector FROM memory_windows WHERE corpus_id = ? AND idx IN "
        "(SELECT value FROM json_each(?))", (corpus_id, json.dumps(sorted(by_idx))))
    for idx, blob in rows:
        by_idx[idx].vector = window_vector(blob)


def window_turns(conn: AnyConnection, corpus_id: int, windows: list[WindowRecord],
                 ) -> list[TurnRecord]:
    """The turns of some stored windows in seq order, each read by its seq range (an indexed
    look-up, where asking by window number scans every turn of the corpus)."""
    found = [t for w in sorted(windows, key=lambda w: w.first_seq)
             for t in turns_in_windows(conn, corpus_id, [w.idx], w.first_seq, w.last_seq)]
    return sorted(found, key=lambda t: t.seq)


def _members(windows: list[WindowRecord]) -> dict[int, list[WindowRecord]]:
    grouped: dict[int, list[WindowRecord]] = defaultdict(list)
    for window in windows:
        if window.episode is not None:
            grouped[window.episode].append(window)
    return grouped


def medoids(windows: list[WindowRecord], centroid: np.ndarray, dim: int,
            matrix: np.ndarray | None = None) -> list[int]:
    """The N_MEDOIDS windows closest (cosine) to the centroid, in chronological order (ranked
    by the score rounded to 6 places, then the window index; `matrix`: their vectors)."""
    import numpy as np

    if matrix is None:
        matrix = unpack_rows([w.vector for w in windows], dim)
    norm = float(np.linalg.norm(centroid)) or 1.0
    scores = matrix @ (centroid / norm)
    ranked = sorted(_contenders(scores), key=lambda i: (-round(float(scores[i]), 6),
                                                        windows[i].idx))
    return sorted(windows[i].idx for i in ranked[:N_MEDOIDS])


def _contenders(scores: np.ndarray) -> list[int]:
    """The positions that can rank in the top N_MEDOIDS by rounded score: within 2e-6 of the
    N-th best raw score (rounding to 6 places moves a score by at most 5e-7), so the exact
    ranking sorts a few windows instead of every member."""
    import numpy as np

    if len(scores) <= N_MEDOIDS or not np.isfinite(scores).all():
        return list(range(len(scores)))
    nth = float(np.partition(scores, len(scores) - N_MEDOIDS)[len(scores) - N_MEDOIDS])
    return np.flatnonzero(scores.astype(np.float64) >= nth - 2e-6).tolist()


def _episode(conn: AnyConnection, state: State, eid: int, centroid: np.ndarray,
             members: list[WindowRecord], matrix: np.ndarray | None = None) -> EpisodeRecord:
    chosen = medoids(members, centroid, state.dim, matrix)
    by_idx = {w.idx: w for w in members}
    turns = window_turns(conn, state.corpus_id, [by_idx[i] for i in chosen])
    prefix = render_prefix(eid, members, turns, EPISODE_TOKENS)
    return EpisodeRecord(eid, pack(centroid), len(members), chosen, prefix,
                         hashlib.sha256(prefix.encode("utf-8")).hexdigest(), count_tokens(prefix))


def render_prefix(eid: int, members: list[WindowRecord], turns: list[TurnRecord],
                  budget: int) -> str:
    """The episode's prompt block: a fixed header, then medoid turns in order, within `budget`."""
    sessions = list(dict.fromkeys(w.session or "" for w in sorted(members, key=lambda w: w.idx)))
    label = ", ".join(s for s in sessions[:6] if s) + (" …" if len(sessions) > 6 else "")
    header = f"## Memory episode {eid} ({len(members)} windows; sessions: {label or '-'})\n"
    lines = [header]
    used = count_tokens(header)
    for turn in turns:
        line = turn.line(LINE_CHARS) + "\n"
        cost = count_tokens(line)
        if used + cost > budget:
            break
        lines.append(line)
        used += cost
    return "".join(lines)


def route(question: np.ndarray, episodes: list[EpisodeRecord], dim: int) -> int | None:
    """The episode whose raw centroid has the largest dot product with the question vector."""
    import numpy as np

    if not episodes or not np.any(question):
        return episodes[0].id if len(episodes) == 1 else None
    centroids = np.stack([unpack(e.centroid, dim) for e in episodes])
    return episodes[int(np.argmax(centroids @ question))].id
