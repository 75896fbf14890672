"""Data files shipped inside installed packages, found without importing those packages.

The tokenizer's BPE file (inside litellm), the MiniLM model and tokenizer files and the local
GGUF weights are all looked up this one way: importing litellm alone costs seconds.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_file(package: str, relative: str) -> Path | None:
    """A data file inside an installed package, or None when the package or file is absent."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(next(iter(spec.submodule_search_locations))) / relative
    return candidate if candidate.is_file() else None
