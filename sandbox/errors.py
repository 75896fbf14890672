"""Errors the sandbox raises: one line saying what is wrong and what to do instead."""

from __future__ import annotations


class SandboxError(ValueError):
    """A tool call the sandbox refuses; the message is shown verbatim to a person or an agent."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.splitlines()))


class PathEscapeError(SandboxError):
    """A path that leaves the corpus root through `..`, an absolute path or a symlink."""
