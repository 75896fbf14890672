"""What the agent needs of a corpus, and nothing more: the agent never sees the facade.

`peek.service.Peek` builds one `Workspace` per call into the agent (`Workspace.of(peek)`): a
store handle, a corpus id, a root, the settings, and the two retrievers the agent calls (the
saved graph and chunk search), not the facade's methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from peek.config import Settings
    from peek.db import Database
    from peek.retrieval.graph import FileGraph
    from peek.retrieval.lexical import Hit


class Search(Protocol):
    """Chunk search: the k best chunks for a query."""

    def __call__(self, query: str, k: int = 10) -> list[Hit]:
        """Ranked hits."""
        ...


class Source(Protocol):
    """Whatever a workspace is taken from (the facade): the same members, looked up once."""

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
        """The k best chunks for a query."""
        ...


@dataclass(frozen=True)
class Workspace:
    """A corpus opened in a peek home: where it is, its store, and its retrievers."""

    root: Path
    settings: Settings
    db: Database
    corpus_id: int
    graph: Callable[[], FileGraph]
    search: Search

    @classmethod
    def of(cls, source: Source) -> Workspace:
        """The workspace of an opened corpus (raises NotIndexedError before its first index)."""
        return cls(source.root, source.settings, source.db, source.corpus_id, source.graph,
                   source.search)
