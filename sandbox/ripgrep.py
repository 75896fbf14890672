"""Where the rg binary is; apart from `grep` so tools can pick it without loading `regex`."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def find_ripgrep() -> str | None:
    """Prefer the rg installed with this venv (the pinned `ripgrep` wheel), then any rg on PATH."""
    beside = Path(sys.executable).parent / "rg"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("rg")
