"""peek: an orientation cache and agent memory for corpora that agents read again and again.

    >>> from peek import Peek
    >>> with Peek("path/to/repo") as peek:     # doctest: +SKIP
    ...     peek.index()
    ...     peek.ask("where are redirects followed?").citations

Every type a `Peek` method returns, and every type those results hold, is importable from here
(tests/test_architecture.py checks it), as are the errors peek raises.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from peek.agent.models import Model
    from peek.agent.scripted import ScriptedModel
    from peek.agent.session import AskResult, Budgets
    from peek.contextmap.citation import Citation
    from peek.contextmap.errors import (
        BudgetError,
        EntryNotFoundError,
        MapError,
        MapImportError,
        TrajectoryError,
        VersionError,
    )
    from peek.contextmap.model import Anchor, Entry
    from peek.contextmap.policy import AppliedEdit, MapView, UpdateResult
    from peek.contextmap.store import EditRecord, EntryChange, VersionRecord
    from peek.contextmap.trajectory import Trajectory
    from peek.errors import CorpusError, NotIndexedError, PeekError, QueryError, StoreError
    from peek.memory.forget import Forgotten
    from peek.memory.outcomes import OutcomeCorrection, PastOutcome
    from peek.memory.pipeline import Remembered
    from peek.memory.query import MemoryHit, MemorySearch
    from peek.memory.summaries import EntitySummary, EpisodeSummary, ForgottenTurn
    from peek.retrieval.graph import FileGraph, SymbolRow
    from peek.retrieval.indexer import IndexStats
    from peek.retrieval.lexical import Hit
    from peek.service import Peek
    from peek.status import CorpusStatus

# Public name -> the module that defines it; imported on first use so `import peek` stays cheap.
_EXPORTS = {
    "Peek": "peek.service",
    "AskResult": "peek.agent.session",
    "Budgets": "peek.agent.session",
    "Citation": "peek.contextmap.citation",
    "Model": "peek.agent.models",
    "ScriptedModel": "peek.agent.scripted",
    "CorpusStatus": "peek.status",
    "Hit": "peek.retrieval.lexical",
    "IndexStats": "peek.retrieval.indexer",
    "FileGraph": "peek.retrieval.graph",
    "SymbolRow": "peek.retrieval.graph",
    "MapView": "peek.contextmap.policy",
    "UpdateResult": "peek.contextmap.policy",
    "AppliedEdit": "peek.contextmap.policy",
    "Anchor": "peek.contextmap.model",
    "Entry": "peek.contextmap.model",
    "EditRecord": "peek.contextmap.store",
    "EntryChange": "peek.contextmap.store",
    "VersionRecord": "peek.contextmap.store",
    "Trajectory": "peek.contextmap.trajectory",
    "MemoryHit": "peek.memory.query",
    "MemorySearch": "peek.memory.query",
    "Remembered": "peek.memory.pipeline",
    "OutcomeCorrection": "peek.memory.outcomes",
    "PastOutcome": "peek.memory.outcomes",
    "EpisodeSummary": "peek.memory.summaries",
    "EntitySummary": "peek.memory.summaries",
    "ForgottenTurn": "peek.memory.summaries",
    "Forgotten": "peek.memory.forget",
    "PeekError": "peek.errors",
    "CorpusError": "peek.errors",
    "NotIndexedError": "peek.errors",
    "QueryError": "peek.errors",
    "StoreError": "peek.errors",
    "MapError": "peek.contextmap.errors",
    "BudgetError": "peek.contextmap.errors",
    "EntryNotFoundError": "peek.contextmap.errors",
    "TrajectoryError": "peek.contextmap.errors",
    "MapImportError": "peek.contextmap.errors",
    "VersionError": "peek.contextmap.errors",
}

__all__ = [
    "Anchor", "AppliedEdit", "AskResult", "BudgetError", "Budgets", "Citation", "CorpusError",
    "CorpusStatus", "EditRecord", "EntitySummary", "Entry", "EntryChange", "EntryNotFoundError",
    "EpisodeSummary", "FileGraph", "Forgotten", "ForgottenTurn", "Hit", "IndexStats",
    "MapError", "MapImportError", "MapView", "MemoryHit", "MemorySearch", "Model",
    "NotIndexedError", "OutcomeCorrection", "PastOutcome", "Peek", "PeekError", "QueryError",
    "Remembered", "ScriptedModel", "StoreError", "SymbolRow", "Trajectory", "TrajectoryError",
    "UpdateResult", "VersionError", "VersionRecord", "__version__",
]


def __getattr__(name: str) -> Any:
    """Import public names lazily (the CLI imports `peek` on every start)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'peek' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    """The public names, for completion in a REPL."""
    return sorted(__all__)
