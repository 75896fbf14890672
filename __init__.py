"""peek: an orientation cache and agent memory for corpora that agents read again and again.

    >>> from peek import Peek
    >>> peek = Peek("path/to/repo")          # doctest: +SKIP
    >>> peek.index()                          # doctest: +SKIP
    >>> peek.ask("where are redirects followed?").citations   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from peek.agent.models import Model
    from peek.agent.scripted import ScriptedModel
    from peek.agent.session import AskResult, Budgets, Citation
    from peek.contextmap.policy import MapView, UpdateResult
    from peek.errors import CorpusError, NotIndexedError, PeekError, QueryError, StoreError
    from peek.retrieval.indexer import IndexStats
    from peek.retrieval.lexical import Hit
    from peek.service import Peek
    from peek.status import CorpusStatus

# Public name -> the module that defines it; imported on first use so `import peek` stays cheap.
_EXPORTS = {
    "Peek": "peek.service",
    "AskResult": "peek.agent.session",
    "Budgets": "peek.agent.session",
    "Citation": "peek.agent.session",
    "CorpusStatus": "peek.status",
    "Hit": "peek.retrieval.lexical",
    "IndexStats": "peek.retrieval.indexer",
    "MapView": "peek.contextmap.policy",
    "Model": "peek.agent.models",
    "ScriptedModel": "peek.agent.scripted",
    "UpdateResult": "peek.contextmap.policy",
    "PeekError": "peek.errors",
    "CorpusError": "peek.errors",
    "NotIndexedError": "peek.errors",
    "QueryError": "peek.errors",
    "StoreError": "peek.errors",
}

__all__ = [
    "AskResult", "Budgets", "Citation", "CorpusError", "CorpusStatus", "Hit", "IndexStats",
    "MapView", "Model", "NotIndexedError", "Peek", "PeekError", "QueryError", "ScriptedModel",
    "StoreError", "UpdateResult", "__version__",
]


def __getattr__(name: str) -> Any:
    """Import public names lazily (the CLI imports `peek` on every start)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'peek' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
