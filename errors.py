"""Errors that peek reports to people: one line saying what went wrong and what to do."""

from __future__ import annotations


class PeekError(Exception):
    """A problem the user can fix; the CLI prints it as one line and exits with `exit_code`."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class CorpusError(PeekError):
    """The corpus path is missing, not a folder, unreadable or empty."""


class StoreError(PeekError):
    """The database is corrupt, from a newer peek, or not a peek database."""


class QueryError(PeekError):
    """A query or argument cannot be used (empty, malformed)."""


class NotIndexedError(PeekError):
    """A command needs an index that has not been built yet."""


class ConfigError(PeekError):
    """An environment variable, option value or home folder that peek cannot use."""


def shown(name: str, limit: int = 60) -> str:
    """A name the user gave, as an error line quotes it: visible when empty, cut when huge (a
    100,000-character session id must not become a 100,000-character error)."""
    if not name:
        return "''"
    return name if len(name) <= limit else f"{name[:limit]}... ({len(name)} characters)"
