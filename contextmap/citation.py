"""The citation type, apart from the trajectory models so an answer's path needs no pydantic."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Citation:
    """A claim's evidence: a line range of a corpus file (1-based, inclusive).

    The one citation type: an answer's (`AskResult.citations`, checked against the corpus by
    `peek.agent.citations`) and a reported trajectory's (checked by `Trajectory`).
    """

    path: str
    start_line: int
    end_line: int

    def label(self) -> str:
        """`path:start-end`, the form every answer cites."""
        return f"{self.path}:{self.start_line}-{self.end_line}"
