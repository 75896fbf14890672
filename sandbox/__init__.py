"""Read-only file tools confined to a corpus root; depends on nothing else in peek."""

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
