"""Grammar tables for chunking: file extensions, tree-sitter languages, queries and keywords.

Languages, queries and parsers are built lazily and cached, because compiling a grammar or a
query costs far more than parsing a typical source file.
"""

from __future__ import annotations

import keyword
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import tree_sitter_go
import tree_sitter_javascript
import tree_sitter_markdown
import tree_sitter_python
import tree_sitter_typescript
from tree_sitter import Language, Parser, Query

_EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "rst",
}

CODE_LANGUAGES = frozenset({"python", "javascript", "typescript", "tsx", "go"})

_GRAMMARS: dict[str, Callable[[], object]] = {
    "python": tree_sitter_python.language,
    "javascript": tree_sitter_javascript.language,
    "typescript": tree_sitter_typescript.language_typescript,
    "tsx": tree_sitter_typescript.language_tsx,
    "go": tree_sitter_go.language,
    "markdown": tree_sitter_markdown.language,
}

_JS_KEYWORDS = frozenset(
    "break case catch class const continue debugger default delete do else export extends "
    "false finally for function if import in instanceof new null return super switch this "
    "throw true try typeof var void while with yield let static enum await implements "
    "package protected interface private public".split()
)
_GO_KEYWORDS = frozenset(
    "break case chan const continue default defer else fallthrough for func go goto if "
    "import interface map package range return select struct switch type var".split()
)
KEYWORDS: dict[str, frozenset[str]] = {
    "python": frozenset(keyword.kwlist),
    "javascript": _JS_KEYWORDS,
    "typescript": _JS_KEYWORDS,
    "tsx": _JS_KEYWORDS,
    "go": _GO_KEYWORDS,
}

_JS_IDENTIFIERS = "[(identifier) (property_identifier) (shorthand_property_identifier)] @id"
_TS_IDENTIFIERS = (
    "[(identifier) (property_identifier) (shorthand_property_identifier) (type_identifier)] @id"
)
IDENTIFIER_QUERIES: dict[str, str] = {
    "python": "(identifier) @id",
    "javascript": _JS_IDENTIFIERS,
    "typescript": _TS_IDENTIFIERS,
    "tsx": _TS_IDENTIFIERS,
    "go": "[(identifier) (field_identifier) (type_identifier) (package_identifier)] @id",
}

_JS_IMPORTS = """
(import_statement source: (string (string_fragment) @mod))
(export_statement source: (string (string_fragment) @mod))
(call_expression
  function: (identifier) @fn
  arguments: (arguments . (string (string_fragment) @mod))
  (#eq? @fn "require"))
(call_expression function: (import) arguments: (arguments . (string (string_fragment) @mod)))
"""
IMPORT_QUERIES: dict[str, str] = {
    "python": """
(import_statement name: (dotted_name) @mod)
(import_statement name: (aliased_import name: (dotted_name) @mod))
(import_from_statement module_name: (_) @mod)
(future_import_statement "__future__" @mod)
""",
    "javascript": _JS_IMPORTS,
    "typescript": _JS_IMPORTS,
    "tsx": _JS_IMPORTS,
    "go": "(import_spec path: (_) @mod)",
}

# Nested definitions are only found by searching the whole tree; only Python needs them.
_DEFINITION_QUERIES: dict[str, str] = {
    "python": "[(class_definition) (function_definition)] @def (decorated_definition) @dec",
}
MARKDOWN_HEADINGS = "[(atx_heading) (setext_heading)] @h"


# One query does all whole-tree work: a query's cost is mostly the walk, so one walk is cheapest.
_SYMBOL_TABLES = (IDENTIFIER_QUERIES, IMPORT_QUERIES, _DEFINITION_QUERIES)


@dataclass(frozen=True, slots=True)
class Grammar:
    """A compiled tree-sitter grammar with the queries chunking runs against it."""

    name: str
    language: Language
    symbols: Query | None  # captures @id identifiers, @mod imports, @def/@dec definitions


def language_for(path: str) -> str:
    """Pick a grammar from the file extension, so callers need not sniff contents."""
    return _EXTENSIONS.get(os.path.splitext(path)[1].lower(), "text")


@cache
def grammar(language: str) -> Grammar:
    """Compile a grammar and its queries once per process; compiling is the slow part."""
    lang = Language(_GRAMMARS[language]())
    parts = (table.get(language, "") for table in _SYMBOL_TABLES)
    source = "\n".join(part for part in parts if part)
    return Grammar(name=language, language=lang, symbols=Query(lang, source) if source else None)


@cache
def query(language: str, source: str) -> Query:
    """Compile an extra query once; queries are immutable and safe to share across threads."""
    return Query(grammar(language).language, source)


_local = threading.local()


def parser(language: str) -> Parser:
    """Return this thread's parser for a language, since parsers are not thread-safe."""
    parsers: dict[str, Parser] | None = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    found = parsers.get(language)
    if found is None:
        found = parsers[language] = Parser(grammar(language).language)
    return found
