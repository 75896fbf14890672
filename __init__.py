"""peek: an orientation cache and agent memory for corpora that agents read again and again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from peek.service import Peek

__all__ = ["Peek", "__version__"]


def __getattr__(name: str) -> Any:
    """Import the SDK facade lazily so `import peek` stays cheap for the CLI."""
    if name == "Peek":
        from peek.service import Peek

        return Peek
    raise AttributeError(f"module 'peek' has no attribute {name!r}")
