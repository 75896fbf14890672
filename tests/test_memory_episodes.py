"""EpiCache episodes: k-means over windows, byte-stable blocks, routing, incremental updates."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from test_memory_helpers import conversation, indexed

from peek.db import open_database
from peek.memory.episodes import kmeans
from peek.memory.ingest import ingest_turns
from peek.memory.query import episode_prefix, list_episodes, routed_episode
from peek.memory.search import memory_index
from peek.tokens import count_tokens


def build(make_corpus: Any, home: Path, turns: list[dict[str, Any]]) -> Any:
    service = indexed(make_corpus({"README.md": "chat logs\n"}), home)
    ingest_turns(service.db, service.corpus_id, turns)
    return service


def many_turns() -> list[dict[str, Any]]:
    """Enough windows for several episodes: the two topics repeated over sessions."""
    turns = []
    for rep in range(12):
        for t in conversation():
            turns.append({**t, "id": f"R{rep}-{t['id']}", "session": f"{t['session']}-{rep}"})
    return turns


def test_blocks_are_byte_identical_across_builds_and_reopening(make_corpus: Any,
                                                                 tmp_path: Path) -> None:
    first = build(make_corpus, tmp_path / "home1", many_turns())
    second = build(make_corpus, tmp_path / "home2", many_turns())
    listed = list_episodes(first.db, first.corpus_id)
    assert len(listed) >= 2
    assert listed == list_episodes(second.db, second.corpus_id)
    for e in listed:
        block = episode_prefix(first.db, first.corpus_id, e["id"])
        assert block is not None and block == episode_prefix(second.db, second.corpus_id, e["id"])
        assert hashlib.sha256(block.encode()).hexdigest() == e["prefix_sha256"]
        assert count_tokens(block) == e["tokens"] <= 1024
    path, cid = first.settings.db_path, first.corpus_id
    first.close()
    reopened = open_database(path)
    assert list_episodes(reopened, cid) == listed
    reopened.close()
    second.close()


def test_questions_route_to_the_episode_that_holds_their_topic(make_corpus: Any,
                                                                tmp_path: Path) -> None:
    service = build(make_corpus, tmp_path / "home", many_turns())
    with service.db.query() as conn:
        index = memory_index(conn, service.db.path, service.corpus_id)
        assert index is not None
        by_turn = dict(zip((t.turn_id for t in index.turns), index.episode_of, strict=True))
        garden = routed_episode(index, "What did Alice plant in the garden with the compost?")
        travel = routed_episode(index, "When does Bob's flight to Lisbon leave?")
    assert garden == by_turn["R0-D1:1"] and travel == by_turn["R0-D2:1"]
    service.close()


def test_new_turns_join_episodes_until_memory_grows_enough_to_recluster(make_corpus: Any,
                                                                        tmp_path: Path) -> None:
    service = build(make_corpus, tmp_path / "home", many_turns())
    before = {e["id"]: e["prefix_sha256"] for e in list_episodes(service.db, service.corpus_id)}
    extra = [{"id": "X1", "speaker": "Bob", "text": "The tram to the castle in Lisbon was full.",
              "time": "10 Sep 2024", "session": "late"}]
    done = ingest_turns(service.db, service.corpus_id, extra)
    assert done["added"] == 1 and not done["reclustered"] and not done["refitted"]
    after = {e["id"]: e["prefix_sha256"] for e in list_episodes(service.db, service.corpus_id)}
    assert set(after) == set(before)
    assert sum(before[i] == after[i] for i in before) >= len(before) - 1
    again = ingest_turns(service.db, service.corpus_id, many_turns()[:40] + [
        {**t, "id": f"Y{i}", "session": f"y{i // 4}"} for i, t in enumerate(many_turns())])
    assert again["skipped"] == 40 and again["reclustered"]
    service.close()


def test_kmeans_is_deterministic() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(60, 32)).astype(np.float32)
    c1, l1 = kmeans(data, 4)
    c2, l2 = kmeans(data, 4)
    assert np.array_equal(l1, l2) and np.array_equal(c1, c2)


def test_medoids_rank_as_a_full_sort_of_rounded_scores() -> None:
    """Only the windows that can reach the top are sorted; ties of the rounded score (here
    many: scores quantized near a multiple of 1e-6) still fall to the lower window index."""
    from peek.memory.episodes import N_MEDOIDS, medoids
    from peek.memory.store import WindowRecord, pack

    rng = np.random.default_rng(7)
    dim = 16
    centroid = np.zeros(dim, dtype=np.float32)
    centroid[0] = 1.0
    firsts = np.round(rng.uniform(0.2, 0.2 + 4e-6, 300), 7)  # crowded around the cut-off
    vectors = rng.normal(size=(300, dim)).astype(np.float32)
    vectors[:, 0] = firsts
    windows = [WindowRecord(i, i, i, "s", pack(v), 0) for i, v in enumerate(vectors)]
    scores = vectors @ centroid
    full = sorted(range(300), key=lambda i: (-round(float(scores[i]), 6), windows[i].idx))
    assert medoids(windows, centroid, dim) == sorted(full[:N_MEDOIDS])
    assert medoids(windows[:5], centroid, dim) == list(range(5))
