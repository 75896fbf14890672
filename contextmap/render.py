"""The map as a system-prompt block: `== SECTION ==` headers, `[id] text` lines, deterministic."""

from __future__ import annotations

from collections.abc import Iterable

from peek.contextmap.model import SECTION_BY_SLUG, SECTIONS, Entry, sort_key

STALE_MARK = "(stale) "
SECTION_SEPARATOR = "\n\n"


def header(slug: str) -> str:
    """The header line of a section."""
    return f"== {SECTION_BY_SLUG[slug].title} =="


def entry_line(entry: Entry) -> str:
    """One entry's line; stale entries say so, so the agent re-checks them before trusting them."""
    mark = STALE_MARK if entry.outdated else ""
    return f"[{entry.id}] {mark}{entry.text}"


def group(entries: Iterable[Entry]) -> list[tuple[str, list[Entry]]]:
    """Non-empty sections in section order, each with its entries in id order."""
    by_slug: dict[str, list[Entry]] = {}
    for entry in sorted(entries, key=sort_key):
        by_slug.setdefault(entry.section, []).append(entry)
    return [(s.slug, by_slug[s.slug]) for s in SECTIONS if s.slug in by_slug]


def render_entries(entries: Iterable[Entry]) -> str:
    """The rendered block; the same entries always give the same bytes, and no entries give ""."""
    blocks = ["\n".join([header(slug), *map(entry_line, items)]) for slug, items in group(entries)]
    return SECTION_SEPARATOR.join(blocks)
