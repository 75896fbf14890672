"""Names in memory: proper names in a text and normalized entity keys.

Terms (tokenizing, stemming, stopwords) come from `peek.text`, shared with search, the Distiller
and the offline policy; what is here is only about names of people, places and things.
"""

from __future__ import annotations

import re

from peek.text import STOPWORDS, content_words

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
    return set(content_words(name))
