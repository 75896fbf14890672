"""Dense and hybrid retrieval: vectors kept by blob, a faiss index per corpus, RRF behind search.

The pipeline tests use the numpy-only `hash` embedder so they run everywhere; the distilled
static model needs `peek[embed]` and a MiniLM tokenizer, and its tests skip without them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers import SAMPLE, run_peek

from peek.errors import ConfigError
from peek.retrieval.dense import chunk_text, dense_search
from peek.retrieval.embedders import (
    DenseError,
    dense_choice,
    load_static,
    make_dense_embedder,
    static_available,
)
from peek.retrieval.hybrid import RRF_K, fuse
from peek.retrieval.lexical import Hit, search_chunks
from peek.service import Peek

Corpus = Callable[[dict[str, str | bytes]], Path]


def _counts(peek: Peek) -> tuple[int, int, int]:
    """(stored vectors, indexed vectors, chunks) of the corpus."""
    with peek.db.query() as conn:
        vectors = conn.execute("SELECT COUNT(*) FROM chunk_vectors").fetchone()[0]
        size = conn.execute("SELECT size FROM dense_indexes WHERE corpus_id = ?",
                            (peek.corpus_id,)).fetchone()[0]
        chunks = conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    return int(vectors), int(size), int(chunks)


@pytest.fixture
def dense_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEEK_DENSE", "hash")


def test_index_embeds_every_chunk_once_and_builds_the_corpus_index(
        home: Path, make_corpus: Corpus, dense_on: None) -> None:
    peek = Peek(make_corpus(SAMPLE), home)
    peek.index()
    assert peek.dense_stats is not None and peek.dense_stats.embedder == "hash"
    vectors, size, chunks = _counts(peek)
    assert size == chunks and vectors == peek.dense_stats.embedded > 0
    peek.index()  # nothing changed: nothing embedded, index kept
    assert peek.dense_stats.embedded == 0 and peek.dense_stats.indexed == 0
    peek.close()


def test_changed_file_reembeds_only_its_chunks_and_renames_reuse_vectors(
        home: Path, make_corpus: Corpus, dense_on: None) -> None:
    root = make_corpus(SAMPLE)
    peek = Peek(root, home)
    peek.index()
    (root / "src/http/adapters.py").write_text("def retry_budget():\n    return 7\n")
    os.utime(root / "src/http/adapters.py", ns=(1, 1))
    peek.index()
    assert peek.dense_stats is not None and peek.dense_stats.embedded == 1
    (root / "docs/guide.md").rename(root / "docs/manual.md")
    peek.index()
    assert peek.dense_stats.embedded == 0  # same blob under a new path: vectors reused
    vectors, size, chunks = _counts(peek)
    assert size == chunks and vectors == chunks  # stale blobs' vectors pruned
    hits = peek.search("redirects are followed by the session", 10)
    assert any(h.path == "docs/manual.md" for h in hits)
    assert not any(h.path == "docs/guide.md" for h in hits)
    peek.close()


def test_dense_search_finds_the_nearest_chunk_by_vector(
        home: Path, make_corpus: Corpus, dense_on: None) -> None:
    peek = Peek(make_corpus(SAMPLE), home)
    peek.index()
    with peek.db.query() as conn:
        found = dense_search(conn, peek.corpus_id, "getMaxRetries", 3)
        assert found
        row = conn.execute("SELECT c.symbol, c.text FROM chunks c WHERE c.id = ?",
                           (found[0][0],)).fetchone()
    assert "getMaxRetries" in chunk_text(row[0], row[1])
    assert found[0][1] == pytest.approx(max(s for _, s in found))
    peek.close()


def test_search_with_dense_off_is_bm25_exactly(
        home: Path, make_corpus: Corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEEK_DENSE", "hash")
    peek = Peek(make_corpus(SAMPLE), home)
    peek.index()
    monkeypatch.setenv("PEEK_DENSE", "off")
    with peek.db.query() as conn:
        plain = search_chunks(conn, peek.corpus_id, "session redirect", 5)
    assert peek.search("session redirect", 5) == plain
    peek.close()


def test_rrf_puts_chunks_found_by_both_rankers_first(
        home: Path, make_corpus: Corpus, dense_on: None) -> None:
    peek = Peek(make_corpus(SAMPLE), home)
    peek.index()
    with peek.db.query() as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM chunks ORDER BY id")]
        lexical = [Hit("a.py", 1, 2, None, 9.0, ids[0], "x"),
                   Hit("b.py", 1, 2, None, 5.0, ids[1], "x")]
        fused = fuse(conn, lexical, [(ids[1], 0.9), (ids[2], 0.8)], [])
    assert [h.chunk_id for h in fused] == [ids[1], ids[0], ids[2]]
    assert fused[0].score == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))
    assert fused[2].path and fused[2].score == pytest.approx(1 / (RRF_K + 2))
    peek.close()


def test_a_corpus_indexed_without_vectors_falls_back_to_bm25(
        home: Path, make_corpus: Corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    peek = Peek(make_corpus(SAMPLE), home)
    peek.index()
    monkeypatch.setenv("PEEK_DENSE", "hash")
    with peek.db.query() as conn:
        plain = search_chunks(conn, peek.corpus_id, "adapter send", 5)
    assert peek.search("adapter send", 5) == plain
    peek.close()


def test_unknown_dense_value_is_a_one_line_cli_error(
        home: Path, make_corpus: Corpus) -> None:
    root = make_corpus(SAMPLE)
    assert run_peek("index", str(root), "--home", str(home)).returncode == 0
    done = run_peek("search", str(root), "session", "--home", str(home),
                    env={"PEEK_DENSE": "bert"})
    assert done.returncode != 0
    assert done.stderr.startswith("peek: error:") and "PEEK_DENSE" in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2


def test_dense_choice_defaults_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PEEK_DENSE", raising=False)
    assert dense_choice() == "off"
    monkeypatch.setenv("PEEK_DENSE", " Static ")
    assert dense_choice() == "static"
    with pytest.raises(DenseError):
        make_dense_embedder("word2vec")


needs_embed = pytest.mark.skipif(not static_available(),
                                 reason="needs peek[embed] and a MiniLM tokenizer.json")


@needs_embed
@pytest.mark.slow
def test_static_model_distills_once_checks_hashes_and_is_semantic(tmp_path: Path) -> None:
    static = load_static(tmp_path)
    meta = json.loads((tmp_path / "static-minilm-256.json").read_text())
    assert meta["dim"] == static.dim == 256
    v = static.embed(["the dog barked at the cat", "a puppy was barking at a kitten",
                      "stock market prices fell sharply", ""])
    assert np.allclose(np.linalg.norm(v[:3], axis=1), 1.0, atol=1e-5) and not v[3].any()
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    table = tmp_path / "static-minilm-256.npy"
    data = bytearray(table.read_bytes())
    data[-1] ^= 0xFF
    table.write_bytes(bytes(data))
    with pytest.raises(DenseError, match="SHA-256"):
        load_static(tmp_path)


def test_a_bad_dense_weight_is_refused(home: Path, make_corpus: Corpus, dense_on: None,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    peek = Peek(make_corpus(SAMPLE), home)
    peek.index()
    monkeypatch.setenv("PEEK_DENSE_WEIGHT", "lots")
    with pytest.raises(ConfigError, match="PEEK_DENSE_WEIGHT"):
        peek.search("session redirect", 5)
    monkeypatch.setenv("PEEK_DENSE_WEIGHT", "0")
    with peek.db.query() as conn:
        plain = [h.chunk_id for h in search_chunks(conn, peek.corpus_id, "session redirect", 5)]
    assert [h.chunk_id for h in peek.search("session redirect", 5)] == plain
    peek.close()
