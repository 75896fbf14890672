"""Token counting with tiktoken, loaded offline from the encoding files that litellm ships.

tiktoken decodes 200,000 base64 lines each time a process loads o200k_base (~0.4 s); the
decoded encoding is kept in a marshal file in peek's cache folder (PEEK_CACHE_DIR, default the
user cache dir), which loads in a tenth of that. Any problem with that file falls back to
tiktoken's own loader.
"""

from __future__ import annotations

import importlib.util
import marshal
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    folder = configure_offline_cache(name)
    import tiktoken

    source = folder / _CACHE_FILES[name]
    decoded = _load_decoded(name, source)
    if decoded is None:
        from tiktoken_ext.openai_public import ENCODING_CONSTRUCTORS

        decoded = ENCODING_CONSTRUCTORS[name]()
        _save_decoded(name, source, decoded)
    return tiktoken.Encoding(**decoded)


def decoded_cache_path(name: str, source: Path) -> Path:
    """Where the decoded encoding lives; the name changes when the source file does."""
    stat = source.stat()
    folder = os.environ.get("PEEK_CACHE_DIR")
    if not folder:
        from platformdirs import user_cache_dir

        folder = user_cache_dir("peek")
    return Path(folder) / f"tiktoken-{name}-{stat.st_size}-{stat.st_mtime_ns}.marshal"


def _load_decoded(name: str, source: Path) -> dict[str, Any] | None:
    try:
        data = marshal.loads(decoded_cache_path(name, source).read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    return data if isinstance(data, dict) and data.get("name") == name else None


def _save_decoded(name: str, source: Path, decoded: dict[str, Any]) -> None:
    """Write the constructor arguments atomically; skipped when the folder is not writable."""
    try:
        path = decoded_cache_path(name, source)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(marshal.dumps(decoded))
        os.replace(tmp, path)
    except OSError:
        return


def count_tokens(text: str, name: str = ENCODING) -> int:
    """Exact token count of `text` (special tokens are counted as plain text)."""
    if not text:
        return 0
    return len(encoding(name).encode(text, disallowed_special=()))
