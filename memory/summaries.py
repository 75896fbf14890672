"""Typed rows for what the SDK lists from memory: `Peek.memory_episodes` and `memory_entities`.

`peek.memory.query` lists plain rows (the CLI's JSON); these name and type their fields, so an
SDK user gets attributes a type checker knows, and a renamed key fails at the seam.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class EpisodeSummary:
    """One episode: how many windows it holds, its block's tokens and the block's sha256."""

    id: int
    size: int
    tokens: int
    prefix_sha256: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the `peek memory episodes --json` row)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class EntitySummary:
    """One entity: its kind and roles, how many sources mention it, first and last, staleness."""

    id: str
    name: str
    kind: str
    roles: list[str]
    mentions: int
    first: str
    last: str
    stale: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the `peek memory entities --json` row)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ForgottenTurn:
    """One audit row of `peek memory forget`: the turn, when and why, a sha256 of its text
    (None when the stored text could not be read), never the text."""

    turn_id: str
    session: str | None
    source: str
    text_sha256: str | None
    reason: str | None
    forgotten_at: float

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the `peek memory forgotten --json` row)."""
        return asdict(self)
