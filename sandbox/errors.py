"""Errors the sandbox raises: one line saying what is wrong and what to do instead."""

from __future__ import annotations

from peek.safefs import PathEscapeError, SandboxError

__all__ = ["PathEscapeError", "SandboxError"]
