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
