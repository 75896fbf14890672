"""File contents as git sees them: blob ids and the binary sniff, shared by every layer.

The indexer, the map's freshness checks, memory's staleness marks and the sandbox's tools all
ask the same two questions of a file's bytes (what blob is this, is it binary), so they answer
them here once.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

SNIFF_BYTES = 8192
_SHA_CACHE: dict[str, tuple[tuple[int, int, int], str]] = {}
_SHA_CACHE_MAX = 8192


def git_blob_sha(data: bytes) -> str:
    """The blob id git gives these bytes (`git hash-object`), so peek and git agree on identity."""
    digest = hashlib.sha1(b"blob %d\0" % len(data))
    digest.update(data)
    return digest.hexdigest()


def is_binary(data: bytes) -> bool:
    """A NUL byte in the first 8 KiB marks a file as binary, as git and grep do."""
    return b"\0" in data[:SNIFF_BYTES]


def working_tree_sha(path: str | Path, root: Path | None = None) -> str | None:
    """The blob sha of a corpus file now, cached by (mtime, size, inode) so renders stay cheap.

    `path` is relative to `root` (an absolute path is split against `root`'s parent when no
    root is given). The file is read race-free beneath the root with the one read size cap: a
    cited symlink out of the corpus or a huge file has no sha (it reads as gone).
    """
    from peek.config import max_file_bytes
    from peek.safefs import SandboxError, open_beneath, read_fd

    if root is None:
        full = Path(path)
        root, path = full.parent, full.name
    key = os.path.join(os.fspath(root), os.fspath(path))
    try:
        with open_beneath(root, os.fspath(path), "file") as opened:
            st = opened.info
            sig = (st.st_mtime_ns, st.st_size, st.st_ino)
            hit = _SHA_CACHE.get(key)
            if hit is not None and hit[0] == sig:
                return hit[1]
            sha = git_blob_sha(read_fd(opened.fd, st, max_file_bytes(), os.fspath(path)))
    except (SandboxError, OSError):
        return None
    if len(_SHA_CACHE) >= _SHA_CACHE_MAX:
        _SHA_CACHE.clear()
    _SHA_CACHE[key] = (sig, sha)
    return sha
