"""Token counting with tiktoken, loaded offline from the encoding files that litellm ships."""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from peek.errors import PeekError

if TYPE_CHECKING:
    import tiktoken

ENCODING = "o200k_base"
# tiktoken caches each encoding under the SHA-1 of its download URL.
_CACHE_FILES = {
    "o200k_base": "fb374d419588a4632f3f557e76b4b70aebbca790",
    "cl100k_base": "9b5ad71b2ce5302211f9c61530b329a4922fc6a4",
}


def bundled_cache_dir() -> Path | None:
    """The tokenizer folder inside the installed litellm package, found without importing it."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
    return folder if folder.is_dir() else None


def configure_offline_cache(encoding: str = ENCODING) -> Path:
    """Point tiktoken (and litellm, which overwrites TIKTOKEN_CACHE_DIR) at a folder that has it."""
    wanted = _CACHE_FILES[encoding]
    current = os.environ.get("TIKTOKEN_CACHE_DIR")
    if current and (Path(current) / wanted).is_file():
        folder = Path(current)
    else:
        found = bundled_cache_dir()
        if found is None or not (found / wanted).is_file():
            raise PeekError(
                f"no offline copy of the tiktoken encoding {encoding}",
                "reinstall peek so that litellm's bundled tokenizers are present",
            )
        folder = found
    os.environ["TIKTOKEN_CACHE_DIR"] = str(folder)
    os.environ.setdefault("CUSTOM_TIKTOKEN_CACHE_DIR", str(folder))
    return folder


@lru_cache(maxsize=4)
def encoding(name: str = ENCODING) -> tiktoken.Encoding:
    """The tiktoken encoding, loaded once per process from the offline cache."""
    configure_offline_cache(name)
    import tiktoken

    return tiktoken.get_encoding(name)


def count_tokens(text: str, name: str = ENCODING) -> int:
    """Exact token count of `text` (special tokens are counted as plain text)."""
    if not text:
        return 0
    return len(encoding(name).encode(text, disallowed_special=()))
