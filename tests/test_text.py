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


def test_the_compiled_stemmer_stems_as_the_pure_python_one() -> None:
    """PyStemmer (what snowballstemmer runs when it is installed) against snowballstemmer's own
    Porter, on every word of peek's source: the speed-up changes no stem."""
    import re
    from pathlib import Path

    import Stemmer
    from snowballstemmer.porter_stemmer import PorterStemmer

    root = Path(__file__).resolve().parents[1]
    words = sorted({w.lower() for p in root.rglob("*.py") if ".venv" not in p.parts
                    for w in re.findall(r"\w+", p.read_text(encoding="utf-8"))})
    assert len(words) > 3000
    assert Stemmer.Stemmer("porter").stemWords(words) == PorterStemmer().stemWords(words)
