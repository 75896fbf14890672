"""What the agent needs of a corpus, as a protocol: the agent never imports the facade.

`peek.service.Peek` satisfies it; the agent's modules annotate with `Workspace`, so they see a
store handle, a corpus id, a root, the settings, and the two retrievers they call (the saved
graph and lexical search), not the facade's 30 methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from peek.config import Settings
    from peek.db import Database
    from peek.retrieval.graph import FileGraph
    from peek.retrieval.lexical import Hit


class Workspace(Protocol):
    """A corpus opened in a peek home: where it is, its store, and its retrievers."""

    root: Path
    settings: Settings

    @property
    def db(self) -> Database:
        """The store."""
        ...

    @property
    def corpus_id(self) -> int:
        """The corpus's id in the store (raises NotIndexedError when it has none)."""
        ...

    def graph(self) -> FileGraph:
        """The import/reference graph the last index saved."""
        ...

    def search(self, query: str, k: int = 10) -> list[Hit]:
        """The k best chunks for a query (lexical BM25)."""
        ...
