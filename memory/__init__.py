"""Episodic memory: the GSW workspace and EpiCache episodes.

The public API is imported lazily (numpy and faiss load only when memory is used):
`ingest_turns`, `ingest_documents`, `record_code_session`, `memory_search`, `memory_block`,
`list_episodes`, `list_entities`, `invalidate`, `active_embedder_name`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from peek.memory.embed import active_embedder_name
    from peek.memory.ingest import ingest_documents, ingest_turns
    from peek.memory.invalidation import invalidate
    from peek.memory.query import (
        MemorySearch,
        list_entities,
        list_episodes,
        memory_block,
        memory_search,
    )
    from peek.memory.sessions import record_code_session

_HOMES = {
    "ingest_turns": "peek.memory.ingest",
    "ingest_documents": "peek.memory.ingest",
    "record_code_session": "peek.memory.sessions",
    "memory_search": "peek.memory.query",
    "memory_block": "peek.memory.query",
    "list_episodes": "peek.memory.query",
    "list_entities": "peek.memory.query",
    "MemorySearch": "peek.memory.query",
    "invalidate": "peek.memory.invalidation",
    "active_embedder_name": "peek.memory.embed",
}
__all__ = [
    "MemorySearch",
    "active_embedder_name",
    "ingest_documents",
    "ingest_turns",
    "invalidate",
    "list_entities",
    "list_episodes",
    "memory_block",
    "memory_search",
    "record_code_session",
]


def __getattr__(name: str) -> Any:
    """Import a public name on first use."""
    if name not in _HOMES:
        raise AttributeError(f"module 'peek.memory' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
