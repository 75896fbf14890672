"""Code-aware tokens and ranked search."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import SAMPLE, run_peek

from peek.retrieval.lexical import path_prior
from peek.service import Peek
from peek.text import expand_for_index, query_terms, split_identifier


def test_split_identifier() -> None:
    assert split_identifier("getHTTPResponse_code") == ["get", "http", "response", "code"]
    assert split_identifier("resolve_redirects") == ["resolve", "redirects"]
    assert split_identifier("XMLParser") == ["xml", "parser"]


def test_index_text_keeps_whole_identifiers_and_adds_parts() -> None:
    out = expand_for_index("x = getMaxRetries() + max_pool")
    assert out.startswith("x = getMaxRetries() + max_pool")
    assert set(out.split("\n")[1].split()) == {"get", "max", "retries", "pool"}


def test_query_terms_drop_stopwords_and_split() -> None:
    assert query_terms("Where is Session.resolve_redirects?") == [
        "session", "resolve_redirects", "resolve", "redirects",
    ]
    assert query_terms("where is the") == ["where", "is", "the"]  # nothing else: keep them


def test_stopwords_never_drop_words_written_as_code() -> None:
    assert query_terms("get") == ["get"]
    assert query_terms("how do I get the user") == ["user"]
    assert query_terms("where is get() defined") == ["get", "defined"]
    assert query_terms("what does `use` do") == ["use"]
    assert query_terms("when is dict.get called") == ["dict", "get", "called"]
    assert query_terms("get_user") == ["get_user", "user"]


def test_path_prior() -> None:
    assert path_prior("src/a.py", ["a"]) == 1.0
    assert path_prior("tests/test_a.py", ["a"]) < 1.0
    assert path_prior("tests/test_a.py", ["test_a"]) == 1.0
    assert path_prior("HISTORY.md", ["a"]) < path_prior("docs/guide.md", ["a"]) < 1.0
    assert path_prior("docs/guide.md", ["docs"]) == 1.0


def test_symbol_and_camel_case_queries_find_definitions(make_corpus, home: Path) -> None:
    peek = Peek(make_corpus(SAMPLE))
    peek.index()
    top = peek.search("resolve_redirects", 3)[0]
    assert (top.path, top.symbol) == ("src/http/session.py", "Session.resolve_redirects")
    assert (top.start_line, top.end_line) == (9, 13)
    assert peek.search("max retries", 1)[0].symbol == "getMaxRetries"
    assert peek.search("getMaxRetries", 1)[0].path == "src/http/adapters.py"


def test_path_words_are_searchable(make_corpus, home: Path) -> None:
    peek = Peek(make_corpus(SAMPLE))
    peek.index()
    assert {h.path for h in peek.search("adapters", 10)} >= {"src/http/adapters.py"}


def test_fts_syntax_in_queries_is_harmless(make_corpus, home: Path) -> None:
    peek = Peek(make_corpus(SAMPLE))
    peek.index()
    assert isinstance(peek.search('"redirect" OR NEAR( AND * ^session', 5), list)


def test_search_for_a_stopword_finds_its_definition(make_corpus, home: Path) -> None:
    root = make_corpus({"store.py": "class Store:\n    def get(self, key):\n        return key\n",
                        "other.py": "def fetch():\n    return 1\n"})
    with Peek(root) as sdk:
        sdk.index()
    out = run_peek("search", str(root), "get", "--json")
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)["results"]
    assert hits and (hits[0]["path"], hits[0]["symbol"]) == ("store.py", "Store.get")
