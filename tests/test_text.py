"""One stemmer: `peek.text.stem` is Porter's with FTS5's length rule, for memory and PostgreSQL
(its agreement with SQLite's FTS5 on a real vocabulary: tests/test_backends.py)."""

from __future__ import annotations

from peek.retrieval.pg_lexical import fts5_stems
from peek.text import stem


def test_identifiers_with_underscores_and_digits_stem_as_fts5_does() -> None:
    words = ["_add_entity", "test_filters", "x86s", "resolve_redirects"]
    assert [stem(w) for w in words] == [fts5_stems(words)[w] for w in words]


def test_short_and_long_words_stay_whole() -> None:
    assert [stem(w) for w in ("is", "gets", "a" * 65)] == ["is", "get", "a" * 65]
    assert stem("running") == "run" and stem("categories") == "categori"
