"""Embedders: the lexical default is fast, normalized and fitted per corpus; MiniLM is optional."""

from __future__ import annotations

import numpy as np
import pytest

from peek.memory.embed import (
    EmbedderError,
    HashEmbedder,
    active_embedder_name,
    make_embedder,
    minilm_available,
)

TEXTS = ["the tomatoes grow in the community garden", "tomato plants in a garden bed",
         "a flight to Lisbon for the conference", "parse_config reads DATABASE_URL"]


def test_hash_vectors_are_unit_length_and_lexically_close() -> None:
    embedder = HashEmbedder()
    embedder.fit(TEXTS)
    vectors = embedder.embed(TEXTS + [""])
    assert vectors.dtype == np.float32 and vectors.shape == (5, embedder.dim)
    assert np.allclose(np.linalg.norm(vectors[:4], axis=1), 1.0, atol=1e-5)
    assert not vectors[4].any()
    sims = vectors[:4] @ vectors[0]
    assert sims[1] > sims[2] and sims[1] > sims[3]


def test_code_identifiers_match_their_words() -> None:
    embedder = HashEmbedder()
    embedder.fit(TEXTS)
    query = embedder.embed(["config parse"])[0]
    assert int(np.argmax(embedder.embed(TEXTS) @ query)) == 3


def test_fitted_state_round_trips_byte_for_byte() -> None:
    first = HashEmbedder()
    first.fit(TEXTS)
    second = HashEmbedder()
    second.load_state(first.state())
    assert second.state() == first.state()
    assert np.array_equal(first.embed(TEXTS), second.embed(TEXTS))


def test_the_embedder_is_chosen_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PEEK_EMBEDDER", raising=False)
    assert active_embedder_name() == "hash"
    assert make_embedder().name == "hash"
    monkeypatch.setenv("PEEK_EMBEDDER", "MiniLM")
    assert active_embedder_name() == "minilm"
    monkeypatch.setenv("PEEK_EMBEDDER", "word2vec")
    with pytest.raises(EmbedderError, match="unknown embedder 'word2vec'"):
        active_embedder_name()


def test_minilm_is_semantic_when_installed() -> None:
    if not minilm_available():
        pytest.skip("the embed extra (onnxruntime, MiniLM model and tokenizer) is not installed")
    embedder = make_embedder("minilm")
    vectors = embedder.embed(["a cat sits on the mat", "a kitten rests on a rug",
                              "stock markets fell sharply"])
    assert vectors.shape == (3, 384)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.2


def test_hash_vectors_are_the_one_by_one_float32_sums_and_survive_a_refit() -> None:
    """The scatter-add over the cached feature table gives the bits that adding each feature's
    weight in turn gives (so stores written before it keep their exact vectors), also after a
    refit changed every IDF."""
    import math
    import zlib

    from peek.memory.embed import BIGRAM_WEIGHT, _normalize, term_features
    from peek.text import terms

    def one_by_one(embedder: HashEmbedder, text: str) -> np.ndarray:
        row = np.zeros(embedder.dim, dtype=np.float32)
        for feat, count in term_features(terms(text)).items():
            h = zlib.crc32(feat.encode("utf-8"))
            weight = (1.0 + math.log(count)) * embedder.idf(feat)
            weight *= BIGRAM_WEIGHT if feat.startswith("~") else 1.0
            row[h % embedder.dim] += weight if (h >> 20) & 1 else -weight
        return row

    texts = TEXTS + ["garden garden garden tomatoes; the garden again", "Lisbon"]
    embedder = HashEmbedder()
    embedder.fit(TEXTS[:2])
    before = embedder.embed(texts)
    embedder.extend_terms(terms(t) for t in TEXTS[2:])
    after = embedder.embed(texts)
    assert not np.array_equal(before, after)
    expected = _normalize(np.stack([one_by_one(embedder, t) for t in texts]))
    assert np.array_equal(after, expected)
