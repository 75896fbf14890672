"""Words for memory: stemmed, code-aware terms, proper names and normalized entity keys.

Memory search, the lexical embedder and entity matching all read text through these few
functions, so a term means the same thing at ingest, at query time and in the IDF table.
"""

from __future__ import annotations

import re
from functools import lru_cache

from peek.retrieval.lexical import STOPWORDS, split_identifier

_WORD = re.compile(r"[A-Za-z0-9_]+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SUFFIXES = ("ingly", "edly", "ing", "ied", "ies", "ed", "es", "s", "ly")
# Capitalized runs ("Ezra Edwards", "American Museum of Natural History"), joiners allowed inside.
_NAME = re.compile(
    r"\b[A-Z][a-zA-Z0-9'\-]*(?:\s+(?:(?:of|the|de|van|von|and)\s+)?[A-Z][a-zA-Z0-9'\-]*)*"
)
_NAME_STOP = frozenset(
    "i i'm i've i'd i'll im it's a an the this that these those what when where who why how which "
    "consider reflect recall think provide list describe enumerate include yes no hey hi hello "
    "thanks thank oh wow ok okay sure well so and but or if my your our their his her its we you "
    "they he she there here also just really great nice good".split()
)
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def stem(word: str) -> str:
    """A light suffix stripper: 'painting', 'painted' and 'paints' share the term 'paint'."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            return base + "y" if suffix in ("ies", "ied") else base
    return word


def terms(text: str) -> list[str]:
    """Stemmed content terms in order, with the parts of compound identifiers added after them."""
    out: list[str] = []
    for token in _WORD.findall(text):
        out.extend(token_terms(token))
    return out


@lru_cache(maxsize=1 << 16)
def token_terms(token: str) -> tuple[str, ...]:
    """The terms of one word, cached: words repeat, and ingest and refits read every turn."""
    out: list[str] = []
    lowered = token.lower()
    if len(lowered) > 1 and lowered not in STOPWORDS:
        out.append(stem(lowered))
    if _IDENT.fullmatch(token) and ("_" in token.strip("_") or _is_camel(token)):
        out.extend(stem(p) for p in split_identifier(token) if len(p) > 1
                   and p not in STOPWORDS)
    return tuple(out)


def _is_camel(token: str) -> bool:
    return not (token.islower() or token.isupper()) and not token.istitle()


def norm_name(name: str) -> str:
    """The exact-match key of an entity name: lower-cased alphanumerics only (as GSW does)."""
    return _NON_ALNUM.sub("", name.lower())


def proper_names(text: str) -> list[str]:
    """Capitalized names in a text, without sentence-initial function words; first seen first."""
    found: dict[str, None] = {}
    for match in _NAME.finditer(text):
        words = match.group(0).split()
        while words and words[0].lower().strip("'") in _NAME_STOP:
            words = words[1:]
        while words and words[-1].lower() in ("of", "the", "and", "de"):
            words = words[:-1]
        name = " ".join(words).strip("'-")
        if name and (len(words) > 1 or _is_name_word(words[0], match.start(), text)):
            found[name] = None
    return list(found)


def _is_name_word(word: str, start: int, text: str) -> bool:
    """A single capitalized word counts when it is not just the first word of a sentence."""
    if len(word) < 2 or word.lower() in STOPWORDS:
        return False
    before = text[:start].rstrip()
    return bool(before) and before[-1] not in ".!?\n\"'(" and not before.endswith(":")


def name_words(name: str) -> set[str]:
    """The lower-cased non-stopword words of a name, for partial matches ('Chloe' ~ 'Chloe Lee')."""
    lowered = (t.lower() for t in _WORD.findall(name))
    return {w for w in lowered if w not in STOPWORDS and len(w) > 1}
