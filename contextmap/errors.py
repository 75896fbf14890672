"""Errors the context map reports to people; each says what went wrong and what to do."""

from __future__ import annotations

from peek.errors import PeekError


class MapError(PeekError):
    """A context-map command cannot be carried out as asked."""


class BudgetError(MapError):
    """The token budget cannot hold the entries that must stay (the pinned ones)."""


class EntryNotFoundError(MapError):
    """A command names a map entry id that the map does not hold."""


class TrajectoryError(MapError):
    """A recorded trajectory is not valid JSON or does not match the trajectory contract."""


class MapImportError(MapError):
    """An exported map file cannot be imported (not JSON, wrong format, bad entries)."""


class VersionError(MapError):
    """A command names a map version that does not exist."""
