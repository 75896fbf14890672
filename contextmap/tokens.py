"""Token counts of the rendered map: a cached per-line estimate and the exact count that decides.

The budget is a hard invariant on the exact count of the whole rendered block (tiktoken
`o200k_base`, headers and separators included). BPE does not add up exactly across line breaks,
so the per-line cache only steers the Evictor; every decision is confirmed with `exact_tokens`.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from peek.contextmap.model import Entry
from peek.contextmap.render import SECTION_SEPARATOR, entry_line, group, header
from peek.tokens import count_tokens


@lru_cache(maxsize=16384)
def line_tokens(line: str) -> int:
    """Tokens of one rendered line, cached because entries are re-rendered on every update."""
    return count_tokens(line)


@lru_cache(maxsize=1)
def _newline() -> int:
    return count_tokens("\n")


@lru_cache(maxsize=1)
def _separator() -> int:
    return count_tokens(SECTION_SEPARATOR)


def estimate_tokens(entries: Iterable[Entry]) -> int:
    """Fast estimate of the rendered block's tokens from cached line counts."""
    sections = group(entries)
    total = _separator() * max(0, len(sections) - 1)
    for slug, items in sections:
        total += line_tokens(header(slug))
        total += sum(line_tokens(entry_line(e)) + _newline() for e in items)
    return total


@lru_cache(maxsize=256)
def exact_tokens(rendered: str) -> int:
    """The count the budget is checked against: the rendered block encoded as one string."""
    return count_tokens(rendered)
