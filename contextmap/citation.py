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
        """`path:start-end`, the form every answer cites, on one line whatever the name."""
        return f"{shown_path(self.path)}:{self.start_line}-{self.end_line}"


def shown_path(path: str) -> str:
    """A path on one line: a newline or other control character in a file name is escaped."""
    if path.isprintable():
        return path
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)
