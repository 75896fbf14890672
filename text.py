"""Words in peek: the one place that decides how text becomes terms.

Search (chunk FTS5 and its queries), memory, the Distiller and the offline policy all read text
through these functions, so a term means the same thing at index time, at query time and in
every ranking: code-aware tokens (whole identifiers plus their snake/camel parts), one stemmer
(Porter's), and stopwords that never drop an identifier: a word written as code (`get()`,
`` `get` ``, `obj.get`, `get_user`, `getUser`) is always kept, and a query made only of
stopwords keeps its words (`peek search repo "get"` finds `def get`).

Stemming is Porter's algorithm everywhere: the chunk index on SQLite runs it inside FTS5 (its
`porter` tokenizer, C), and everything else calls `stem` here (snowballstemmer's Porter, run by
PyStemmer's compiled copy, with FTS5's rule that words under 3 or over 64 bytes stay whole):
memory's terms before its own FTS5 tables (which do not stem again) and every PostgreSQL index.
`tests/test_backends.py` checks that the two agree on a real corpus's vocabulary.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

#: Which analysis made a stored term: memory records it and re-derives its terms when it changes
#: (1: a light suffix stripper; 2: Porter's stemmer, as SQLite's FTS5 and PostgreSQL use).
ANALYSIS = 2
MAX_QUERY_TERMS = 48
WORD = re.compile(r"[A-Za-z0-9_]+")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")  # maybe dotted: a.b.c
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z0-9])|[A-Z]?[a-z0-9]+|[A-Z]+")

# Function words and question filler: they say nothing about where code lives.
STOPWORDS = frozenset(
    "a an and are as at be but by can could did do does doing for from had has have how i if in "
    "into is it its me my no not of on or our should so than that the their them then there these "
    "they this those to too was we were what when where which while who why will with would you "
    "your also any all some such get got just like use used using want seems".split()
)
# Words a question uses to talk about code rather than to name it ("which function handles...");
# the Distiller leaves them out of an entry's concept words, on top of STOPWORDS.
CODE_TALK = frozenset("""
about above after again because been before being below between both done down during each
either else ever every few gets having he her here itself made make makes many may might more
most much must need nor now off once one only other out over own same shall she through under
until up upon us uses very whether whom whose within without yet code file files function
functions class classes method methods implemented implement implementation defined define
definition happens happen work works working find found look located location called call calls
handle handles handled module modules thing things way ways part parts repo repository project
please show tell explain
""".split())


def split_identifier(token: str) -> list[str]:
    """The words inside snake_case and camelCase names: getHTTPResponse → get http response."""
    parts: list[str] = []
    for piece in token.split("_"):
        parts.extend(p.lower() for p in _CAMEL.findall(piece))
    return parts


def is_compound(token: str) -> bool:
    """Whether an identifier has parts: snake_case or camelCase (not `get`, `GET` or `Get`)."""
    if not IDENT.fullmatch(token):
        return False
    return "_" in token.strip("_") or not (token.islower() or token.isupper() or token.istitle())


def expand_for_index(body: str) -> str:
    """Body text plus the parts of its compound identifiers, so both whole names and words match."""
    extra: dict[str, None] = {}
    for token in set(IDENT.findall(body)):
        parts = _index_parts(token)
        if parts:  # most tokens are plain words: skip them without building a dict
            for part in parts:
                extra[part] = None
    return body + "\n" + " ".join(extra) if extra else body


@lru_cache(maxsize=1 << 18)  # a large corpus has ~80k distinct names: keep them all
def _index_parts(token: str) -> tuple[str, ...]:
    """The words a compound identifier adds to the index (none for a plain word); memoized,
    since a corpus repeats its names in every file."""
    if "_" in token.strip("_") or not (token.islower() or token.isupper()):
        return tuple(p for p in split_identifier(token) if len(p) > 1)
    return ()


def path_field(path: str) -> str:
    """A path as searchable words: sympy/core/basic.py → 'sympy core basic py' plus the parts."""
    return expand_for_index(re.sub(r"[/.\-]", " ", path))


def written_as_code(text: str, start: int, end: int) -> bool:
    """Whether the word at text[start:end] is marked as code: `name`, name(, .name, name."""
    before = text[start - 1] if start > 0 else ""
    after = text[end : end + 2]  # the next two characters ("" at the end)
    return before in ("`", ".") or after[:1] in ("`", "(") or (
        after[:1] == "." and after[1:].isalpha())


def query_terms(query: str, limit: int = MAX_QUERY_TERMS) -> list[str]:
    """Distinct lower-cased terms of a query: whole identifiers and their parts, no stopwords
    unless written as code; a query of stopwords only keeps them."""
    terms: dict[str, None] = {}
    plain: dict[str, None] = {}
    for match in WORD.finditer(query):
        token, lowered = match.group(0), match.group(0).lower()
        code = written_as_code(query, match.start(), match.end())
        if len(lowered) > 1:
            (terms if code or lowered not in STOPWORDS else plain)[lowered] = None
        if IDENT.fullmatch(token):
            terms.update(dict.fromkeys(
                p for p in split_identifier(token) if len(p) > 1 and p not in STOPWORDS))
    return list(terms or plain)[:limit]


@lru_cache(maxsize=1 << 17)
def stem(word: str) -> str:
    """A lower-cased word as SQLite's FTS5 porter tokenizer stems it (Porter's algorithm; words
    under 3 or over 64 bytes stay whole), so memory, PostgreSQL and the chunk index agree."""
    size = len(word) if word.isascii() else len(word.encode())
    return str(_porter().stemWord(word)) if 3 <= size <= 64 else word


@lru_cache(maxsize=1)
def _porter() -> Any:
    """snowballstemmer's Porter stemmer, built once (it runs PyStemmer's C when installed)."""
    import snowballstemmer

    return snowballstemmer.stemmer("porter")


def terms(text: str) -> list[str]:
    """Stemmed content terms in order, with the parts of compound identifiers added after them."""
    out: list[str] = []
    for token in WORD.findall(text):
        out.extend(token_terms(token))
    return out


@lru_cache(maxsize=1 << 16)
def token_terms(token: str) -> tuple[str, ...]:
    """The terms of one word, cached: words repeat, and ingest and refits read every turn."""
    out: list[str] = []
    lowered = token.lower()
    if len(lowered) > 1 and lowered not in STOPWORDS:
        out.append(stem(lowered))
    if is_compound(token):
        out.extend(stem(p) for p in split_identifier(token) if len(p) > 1 and p not in STOPWORDS)
    return tuple(out)


def word_set(text: str) -> set[str]:
    """The distinct lower-cased words of a text (stopwords included), for overlap measures."""
    return {w.lower() for w in WORD.findall(text)}


def content_words(text: str) -> Iterator[str]:
    """Lower-cased words of a text that are neither stopwords nor single letters."""
    return (w for w in (t.lower() for t in WORD.findall(text)) if w not in STOPWORDS and len(w) > 1)
