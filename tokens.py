"""Token counting with tiktoken's o200k_base, built from an explicit file: no network, no env.

The BPE ranks come from the copy of `o200k_base.tiktoken` that litellm ships (located without
importing litellm) and are accepted only when the file's sha256 is the published one. peek
builds the `tiktoken.Encoding` itself from that file, so it never sets `TIKTOKEN_CACHE_DIR` or
any other process-wide setting (an SDK user's own tiktoken calls are left alone).

Decoding 200,000 base64 lines takes ~0.4 s; the decoded ranks are kept in a marshal file in
peek's cache folder (PEEK_CACHE_DIR, default the user cache dir), which loads in a tenth of
that. A missing or unreadable cache file is rebuilt from the verified BPE file.
"""

from __future__ import annotations

import base64
import hashlib
import marshal
import os
import threading
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from peek.errors import PeekError
from peek.packages import package_file

if TYPE_CHECKING:
    import tiktoken

ENCODING = "o200k_base"


@dataclass(frozen=True)
class EncodingSpec:
    """What defines an encoding: its BPE file (by name and hash), split pattern, specials."""

    name: str
    bundled_name: str  # litellm stores the file under the SHA-1 of its download URL
    sha256: str
    pat_str: str
    special_tokens: dict[str, int]


# The o200k_base split pattern, as published with the encoding.
_O200K_PATTERN = "|".join([
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"\p{N}{1,3}",
    r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"\s*[\r\n]+",
    r"\s+(?!\S)",
    r"\s+",
])
SPECS = {
    "o200k_base": EncodingSpec(
        "o200k_base", "fb374d419588a4632f3f557e76b4b70aebbca790",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d", _O200K_PATTERN,
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    ),
}


def bundled_bpe_file(name: str = ENCODING) -> Path:
    """The encoding's BPE file inside the installed litellm package, found without importing it."""
    path = package_file("litellm", f"litellm_core_utils/tokenizers/{SPECS[name].bundled_name}")
    if path is not None:
        return path
    raise PeekError(f"no offline copy of the tiktoken encoding {name}",
                    "reinstall peek so that litellm's bundled tokenizers are present")


def read_ranks(path: Path, spec: EncodingSpec) -> dict[bytes, int]:
    """The BPE ranks of a `.tiktoken` file (`base64-token rank` lines), after a hash check."""
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != spec.sha256:
        raise PeekError(f"{path} is not the published {spec.name} file (sha256 differs)",
                        "reinstall litellm so that its bundled tokenizer files are intact")
    return {base64.b64decode(token): int(rank)
            for token, rank in (line.split() for line in data.splitlines() if line)}


@lru_cache(maxsize=2)
def encoding(name: str = ENCODING) -> tiktoken.Encoding:
    """The tiktoken encoding, built once per process from the verified bundled file."""
    import tiktoken

    spec = SPECS[name]
    source = bundled_bpe_file(name)
    cached = decoded_cache_path(name, source)
    ranks = _load_decoded(cached)
    if ranks is None:
        ranks = read_ranks(source, spec)
        _save_decoded(cached, ranks)
    return tiktoken.Encoding(spec.name, pat_str=spec.pat_str, mergeable_ranks=ranks,
                             special_tokens=spec.special_tokens)


def preload(name: str = ENCODING) -> threading.Thread:
    """Build the encoding in a background thread, for a caller that counts tokens only after
    other work (a first index seeds its map once every file is written); errors surface on use."""

    def build() -> None:
        with suppress(Exception):
            encoding(name)

    thread = threading.Thread(target=build, name="peek-tokenizer", daemon=True)
    thread.start()
    return thread


def decoded_cache_path(name: str, source: Path) -> Path:
    """Where the decoded ranks live; the name changes when the source file does."""
    stat = source.stat()
    folder = os.environ.get("PEEK_CACHE_DIR")
    if not folder:
        from platformdirs import user_cache_dir

        folder = user_cache_dir("peek")
    return Path(folder) / f"tiktoken-ranks-{name}-{stat.st_size}-{stat.st_mtime_ns}.marshal"


def _load_decoded(path: Path) -> dict[bytes, int] | None:
    try:
        data = marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    return data if isinstance(data, dict) and len(data) > 1000 else None


def _save_decoded(path: Path, ranks: dict[bytes, int]) -> None:
    """Write the ranks atomically; skipped when the folder is not writable."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(marshal.dumps(ranks))
        os.replace(tmp, path)
    except OSError:
        return


def count_tokens(text: str, name: str = ENCODING) -> int:
    """Exact token count of `text` (special tokens are counted as plain text)."""
    if not text:
        return 0
    return len(encoding(name).encode(text, disallowed_special=()))
