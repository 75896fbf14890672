"""One stemmer: peek's `stem` (memory, PostgreSQL) and SQLite's FTS5 porter tokenizer (the
chunk index) give the same term for the words of a real corpus, here peek's own source."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from peek.text import WORD, stem

ROOT = Path(__file__).resolve().parents[1]


def corpus_words() -> list[str]:
    """The distinct lower-cased words of every Python and Markdown file in the repository."""
    words: set[str] = set()
    for path in ROOT.rglob("*"):
        if path.suffix in (".py", ".md") and ".venv" not in path.parts:
            words.update(w.lower() for w in WORD.findall(path.read_text(errors="replace")))
    return sorted(words)


def fts5_porter(words: list[str]) -> dict[str, str]:
    """What FTS5's `porter unicode61 tokenchars '_'` tokenizer makes of each word alone."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(body, "
                 "tokenize = \"porter unicode61 tokenchars '_'\")")
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, instance)")
    conn.executemany("INSERT INTO t(rowid, body) VALUES (?, ?)", enumerate(words, 1))
    return {words[doc - 1]: term for term, doc in conn.execute("SELECT term, doc FROM v")}


def test_stem_agrees_with_sqlite_porter_on_a_real_vocabulary() -> None:
    """Snowball's Porter and SQLite's differ on a few words (7,624 words here: `ies` → i / ie,
    `reversibly` → reversibli / revers); identifiers with `_` and digits stem alike."""
    words = corpus_words()
    assert len(words) > 5000
    sqlite_terms = fts5_porter(words)
    differ = {w: (stem(w), sqlite_terms[w]) for w in words if stem(w) != sqlite_terms[w]}
    assert len(differ) <= len(words) // 1000, list(differ.items())[:20]
    assert stem("_add_entity") == sqlite_terms["_add_entity"] == "_add_ent"


def test_short_and_long_words_stay_whole() -> None:
    assert [stem(w) for w in ("is", "gets", "a" * 65)] == ["is", "get", "a" * 65]
    assert stem("running") == "run" and stem("categories") == "categori"
