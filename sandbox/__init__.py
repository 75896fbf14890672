"""Read-only file tools confined to a corpus root; depends on nothing else in peek.

The names below import on first use: `peek record` needs `peek.sandbox.paths` alone, not the
tools (and the ignore rules and results they load).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import PathEscapeError, SandboxError
    from .results import (
        DirEntry,
        DirListing,
        FileSlice,
        GlobResult,
        GrepMatch,
        GrepResult,
        SymbolHit,
        SymbolResult,
        ToolResult,
    )
    from .specs import TOOL_NAMES, TOOL_SPECS
    from .tools import FileTools

#: public name -> the submodule that defines it
_EXPORTS = {
    "PathEscapeError": "errors", "SandboxError": "errors",
    "DirEntry": "results", "DirListing": "results", "FileSlice": "results",
    "GlobResult": "results", "GrepMatch": "results", "GrepResult": "results",
    "SymbolHit": "results", "SymbolResult": "results", "ToolResult": "results",
    "TOOL_NAMES": "specs", "TOOL_SPECS": "specs", "FileTools": "tools",
}

__all__ = [
    "TOOL_NAMES",
    "TOOL_SPECS",
    "DirEntry",
    "DirListing",
    "FileSlice",
    "FileTools",
    "GlobResult",
    "GrepMatch",
    "GrepResult",
    "PathEscapeError",
    "SandboxError",
    "SymbolHit",
    "SymbolResult",
    "ToolResult",
]


def __getattr__(name: str) -> Any:
    """Import a public name's submodule on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'peek.sandbox' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    """The public names, for completion in a REPL."""
    return sorted(__all__)
