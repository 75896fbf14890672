"""Split files into retrievable chunks and pull out their definitions, imports and identifiers.

Code is parsed with tree-sitter so chunks follow definitions (a class, its methods, a function)
rather than arbitrary line windows; Markdown headings come from tree-sitter too (so a ``#`` in a
code fence is not a heading); reStructuredText headings come from a line scan; anything else is
cut into overlapping line windows.
"""

from __future__ import annotations

import logging
import math
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from tree_sitter import Node, QueryCursor

from .languages import (
    CODE_LANGUAGES,
    KEYWORDS,
    MARKDOWN_HEADINGS,
    grammar,
    language_for,
    parser,
    query,
)

__all__ = ["ParsedChunk", "Definition", "ParsedFile", "language_for", "parse_file"]

log = logging.getLogger(__name__)

MAX_CHUNK_LINES = 200
WINDOW_LINES = 100
MODULE_CHUNK_LINES = 60
TEXT_WINDOW_LINES = 50
TEXT_WINDOW_OVERLAP = 10
MAX_IDENTIFIERS = 2000


@dataclass(frozen=True, slots=True)
class ParsedChunk:
    """A contiguous run of source lines that retrieval returns as one unit."""

    start_line: int
    end_line: int
    kind: str
    symbol: str | None
    text: str


@dataclass(frozen=True, slots=True)
class Definition:
    """A named thing a file defines, for the symbol graph."""

    name: str
    qualname: str
    kind: str
    start_line: int
    end_line: int


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """Everything the indexer keeps from one file."""

    language: str
    chunks: list[ParsedChunk]
    definitions: list[Definition]
    imports: list[str]
    identifiers: list[str]


@dataclass(slots=True)
class _Def:
    """A definition found in the tree; rows are 0-based and inclusive."""

    kind: str  # chunk kind: class | function | method
    def_kind: str  # definition kind: class, function, method, interface, struct, ...
    name: str
    qualname: str
    start: int  # first row, decorators included
    end: int
    lead: int  # first row once the leading comment block is attached
    members: list[_Def] = field(default_factory=list)
    body_rows: list[int] = field(default_factory=list)  # statement starts in a class body
    extra: list[_Def] = field(default_factory=list)  # definitions that get no chunk of their own


_Span = tuple[int, int, str, str | None]  # 0-based first row, last row, chunk kind, symbol
_Captures = dict[str, list[Node]]
_Heading = tuple[int, str | None]  # 0-based row, title


def parse_file(path: str, text: str, language: str | None = None) -> ParsedFile:
    """Chunk one file and extract its symbols, falling back to line windows rather than failing."""
    lang = language or language_for(path)
    text = text.replace("\r\n", "\n")
    lines = _split_lines(text)
    if not any(line.strip() for line in lines):
        return ParsedFile(lang, [], [], [], [])
    try:
        return _parse(lang, text, lines)
    except Exception:  # a grammar failure must never stop indexing; windows still work
        log.warning("could not parse %s as %s; using line windows", path, lang, exc_info=True)
        return ParsedFile(lang, _text_windows(lines), [], [], [])


def _parse(lang: str, text: str, lines: list[str]) -> ParsedFile:
    if lang in CODE_LANGUAGES:
        return _parse_code(lang, text, lines)
    if lang == "markdown":
        return _parse_markdown(text, lines)
    if lang == "rst":
        return _parse_rst(lines)
    return ParsedFile(lang, _text_windows(lines), [], [], [])


def _split_lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "replace")


# ---------------------------------------------------------------- tree helpers


def _text(node: Node | None) -> str:
    raw = node.text if node is not None else None
    return raw.decode("utf-8", "replace") if raw is not None else ""


def _field_text(node: Node, name: str) -> str:
    return _text(node.child_by_field_name(name))


def _last_row(node: Node) -> int:
    end = node.end_point
    if end.column == 0 and end.row > node.start_point.row:
        return end.row - 1
    return end.row


def _own_line(node: Node) -> bool:
    prev = node.prev_sibling
    return prev is None or _last_row(prev) < node.start_point.row


def _lead_row(node: Node) -> int:
    """First row of a definition once the comments and decorators right above it are attached."""
    row = node.start_point.row
    prev = node.prev_sibling
    while (
        prev is not None
        and prev.type in ("comment", "decorator")
        and _last_row(prev) >= row - 1
        and _own_line(prev)
    ):
        row = prev.start_point.row
        prev = prev.prev_sibling
    return row


def _new_def(node: Node, kind: str, def_kind: str, name: str, qualname: str) -> _Def:
    start, end, lead = node.start_point.row, _last_row(node), _lead_row(node)
    return _Def(kind, def_kind, name, qualname, start, end, lead)


def _sorted(nodes: Iterable[Node]) -> list[Node]:
    return sorted(nodes, key=lambda n: n.start_byte)


# ---------------------------------------------------------------- code


def _parse_code(lang: str, text: str, lines: list[str]) -> ParsedFile:
    source = _encode(text)
    root = parser(lang).parse(source).root_node
    defs = _EXTRACTORS[lang](root.children)
    boundaries = sorted({c.start_point.row for c in root.children})
    chunks = _code_chunks(lines, defs, boundaries)
    symbols = grammar(lang).symbols
    caps = QueryCursor(symbols).captures(root) if symbols is not None else {}
    definitions = _python_definitions(caps) if lang == "python" else _flatten(defs)
    names = KEYWORDS[lang] | {d.name for d in definitions}
    return ParsedFile(lang, chunks, definitions, _imports(caps), _identifiers(caps, source, names))


def _code_chunks(lines: list[str], defs: list[_Def], boundaries: list[int]) -> list[ParsedChunk]:
    spans: list[_Span] = []
    for d in defs:
        spans.extend(_def_spans(lines, d))
    covered = [(d.lead, d.end) for d in defs]
    spans.extend(_gap_spans(lines, 0, len(lines) - 1, covered, boundaries, "module", None))
    return _to_chunks(lines, spans)


def _def_spans(lines: list[str], d: _Def) -> list[_Span]:
    if d.kind == "class" and d.members and d.end - d.lead + 1 > MAX_CHUNK_LINES:
        spans = _class_parts(lines, d)
    else:
        spans = [(d.lead, d.end, d.kind, d.qualname)]
    for member in d.members:
        spans.extend(_def_spans(lines, member))
    return spans


def _class_parts(lines: list[str], d: _Def) -> list[_Span]:
    """Cut a huge class into its header plus the body lines its members leave uncovered."""
    first = d.members[0].lead
    header = _trim(lines, d.lead, first - 1)
    spans: list[_Span] = [(header[0], header[1], "class", d.qualname)] if header else []
    covered = [(m.lead, m.end) for m in d.members]
    spans.extend(_gap_spans(lines, first, d.end, covered, d.body_rows, "class", d.qualname))
    return spans


def _gap_spans(
    lines: list[str],
    lo: int,
    hi: int,
    covered: list[tuple[int, int]],
    boundaries: list[int],
    kind: str,
    symbol: str | None,
) -> list[_Span]:
    """Group the rows of lo..hi that no definition covers into chunks of whole statements."""
    spans: list[_Span] = []
    row = lo
    for start, end in [*sorted(covered), (hi + 1, hi + 1)]:
        if start > row:
            spans.extend(_group(lines, row, min(start - 1, hi), boundaries, kind, symbol))
        row = max(row, end + 1)
    return spans


def _group(
    lines: list[str], lo: int, hi: int, boundaries: list[int], kind: str, symbol: str | None
) -> list[_Span]:
    spans: list[_Span] = []
    while lo <= hi:
        stop = _split_point(boundaries, lo, hi)
        piece = _trim(lines, lo, stop)
        if piece:
            spans.append((piece[0], piece[1], kind, symbol))
        lo = stop + 1
    return spans


def _split_point(boundaries: list[int], lo: int, hi: int) -> int:
    """Last row of the piece starting at lo: the latest statement start that keeps it short."""
    if hi - lo + 1 <= MODULE_CHUNK_LINES:
        return hi
    i = bisect_right(boundaries, lo + MODULE_CHUNK_LINES)
    if i and boundaries[i - 1] > lo:
        return boundaries[i - 1] - 1
    j = bisect_right(boundaries, lo)
    if j < len(boundaries) and boundaries[j] <= hi:
        return boundaries[j] - 1
    return hi


def _trim(lines: Sequence[str], lo: int, hi: int) -> tuple[int, int] | None:
    while lo <= hi and not lines[lo].strip():
        lo += 1
    while hi >= lo and not lines[hi].strip():
        hi -= 1
    return (lo, hi) if lo <= hi else None


def _to_chunks(lines: list[str], spans: list[_Span]) -> list[ParsedChunk]:
    chunks: list[ParsedChunk] = []
    last = len(lines) - 1
    for start, end, kind, symbol in sorted(spans, key=lambda s: (s[0], -s[1])):
        for lo, hi in _windows(max(start, 0), min(end, last)):
            chunks.append(ParsedChunk(lo + 1, hi + 1, kind, symbol, "\n".join(lines[lo : hi + 1])))
    return chunks


def _windows(start: int, end: int) -> list[tuple[int, int]]:
    """Split an over-long span into near-equal windows of about WINDOW_LINES lines."""
    length = end - start + 1
    if length <= 0:
        return []
    if length <= MAX_CHUNK_LINES:
        return [(start, end)]
    size = math.ceil(length / round(length / WINDOW_LINES))
    return [(lo, min(lo + size - 1, end)) for lo in range(start, end + 1, size)]


def _flatten(defs: Iterable[_Def]) -> list[Definition]:
    out: list[Definition] = []
    for d in defs:
        out.append(Definition(d.name, d.qualname, d.def_kind, d.start + 1, d.end + 1))
        out.extend(_flatten(d.members))
        out.extend(_flatten(d.extra))
    return out


def _imports(caps: _Captures) -> list[str]:
    """Module paths as written, in file order, each once."""
    nodes = caps.get("mod", [])
    found = ("".join(_text(n).split()).strip("\"'`") for n in _sorted(nodes))
    return list(dict.fromkeys(m for m in found if m))


def _identifiers(caps: _Captures, source: bytes, skip: frozenset[str]) -> list[str]:
    """Names the file uses, for linking it to the files that define them."""
    raw = {source[n.start_byte : n.end_byte] for n in caps.get("id", [])}
    names = {t.decode("utf-8", "replace") for t in raw if len(t) > 1}
    return sorted(n for n in names if len(n) > 1 and n not in skip)[:MAX_IDENTIFIERS]


# ---------------------------------------------------------------- python

_PY_DEFS = ("class_definition", "function_definition")


def _python_defs(children: Iterable[Node], prefix: str = "", in_class: bool = False) -> list[_Def]:
    """Top-level (or class-body) definitions, with each class's methods and nested classes."""
    defs = (_python_def(child, prefix, in_class) for child in children)
    return [d for d in defs if d is not None]


def _python_def(node: Node, prefix: str, in_class: bool) -> _Def | None:
    inner = node.child_by_field_name("definition") if node.type == "decorated_definition" else node
    if inner is None or inner.type not in _PY_DEFS:
        return None
    name = _field_text(inner, "name")
    if not name:
        return None
    is_class = inner.type == "class_definition"
    kind = "class" if is_class else "method" if in_class else "function"
    d = _new_def(node, kind, kind, name, prefix + name)
    body = inner.child_by_field_name("body")
    if is_class and body is not None:
        d.members = _python_defs(body.children, d.qualname + ".", True)
        d.body_rows = sorted({c.start_point.row for c in body.children})
    return d


def _python_definitions(caps: _Captures) -> list[Definition]:
    """Every class and function, nested ones included, qualified by the scopes around them."""
    decorated = _decorated_starts(caps.get("dec", []))
    scopes: list[tuple[int, str, bool]] = []  # end byte, qualname, is a class
    out: list[Definition] = []
    for node in _sorted(caps.get("def", [])):
        while scopes and scopes[-1][0] <= node.start_byte:
            scopes.pop()
        name = _field_text(node, "name")
        if not name:
            continue
        is_class = node.type == "class_definition"
        qualname = f"{scopes[-1][1]}.{name}" if scopes else name
        kind = "class" if is_class else "method" if scopes and scopes[-1][2] else "function"
        start = decorated.get(node.start_byte, node.start_point.row)
        out.append(Definition(name, qualname, kind, start + 1, _last_row(node) + 1))
        scopes.append((node.end_byte, qualname, is_class))
    return out


def _decorated_starts(nodes: Iterable[Node]) -> dict[int, int]:
    starts: dict[int, int] = {}
    for node in nodes:
        inner = node.child_by_field_name("definition")
        if inner is not None:
            starts[inner.start_byte] = node.start_point.row
    return starts


# ---------------------------------------------------------------- javascript / typescript

_JS_FUNCTIONS = frozenset(
    {
        "function_declaration",
        "generator_function_declaration",
        "function_signature",
        "function_expression",
        "function",
        "generator_function",
        "arrow_function",
    }
)
_JS_CLASSES = frozenset({"class_declaration", "abstract_class_declaration", "class"})
_JS_TYPES = {
    "interface_declaration": "interface",
    "type_alias_declaration": "type",
    "enum_declaration": "enum",
    "internal_module": "namespace",
    "module": "namespace",
}
_JS_VARIABLES = frozenset({"lexical_declaration", "variable_declaration"})
_JS_FIELDS = frozenset({"field_definition", "public_field_definition"})
_JS_METHODS = frozenset({"method_definition", "abstract_method_signature"})


def _js_defs(children: Iterable[Node]) -> list[_Def]:
    """Top-level functions, classes, function-valued constants and TypeScript type declarations."""
    defs = (_js_top(child) for child in children)
    return [d for d in defs if d is not None]


def _js_top(node: Node) -> _Def | None:
    inner = _js_unwrap(node)
    return _js_decl(inner, node, None) if inner is not None else None


def _js_unwrap(node: Node) -> Node | None:
    """The declaration inside ``export``, ``declare`` or a bare ``namespace`` statement."""
    if node.type == "export_statement":
        return node.child_by_field_name("declaration") or node.child_by_field_name("value")
    if node.type in ("ambient_declaration", "expression_statement"):
        return node.named_children[0] if node.named_child_count else None
    return node


def _js_decl(inner: Node, outer: Node, name: str | None) -> _Def | None:
    kind = inner.type
    if kind in _JS_VARIABLES:
        return _js_variable(inner, outer)
    name = name or _field_text(inner, "name").strip("\"'") or "default"
    if kind in _JS_FUNCTIONS:
        return _new_def(outer, "function", "function", name, name)
    if kind in _JS_CLASSES:
        d = _new_def(outer, "class", "class", name, name)
        d.members, d.body_rows = _js_members(inner.child_by_field_name("body"), name)
        return d
    if kind in _JS_TYPES:
        return _new_def(outer, "class", _JS_TYPES[kind], name, name)
    return None


def _js_variable(decl: Node, outer: Node) -> _Def | None:
    """``const f = () => ...`` or ``const C = class {...}``: the first such declarator wins."""
    for declarator in decl.named_children:
        value = declarator.child_by_field_name("value")
        if value is not None and (value.type in _JS_FUNCTIONS or value.type in _JS_CLASSES):
            return _js_decl(value, outer, _field_text(declarator, "name"))
    return None


def _js_members(body: Node | None, prefix: str) -> tuple[list[_Def], list[int]]:
    if body is None:
        return [], []
    members: list[_Def] = []
    for child in body.named_children:
        name = _js_member_name(child)
        if name:
            members.append(_new_def(child, "method", "method", name, f"{prefix}.{name}"))
    return members, sorted({c.start_point.row for c in body.children})


def _js_member_name(node: Node) -> str | None:
    if node.type in _JS_METHODS:
        return _field_text(node, "name")
    if node.type in _JS_FIELDS:
        value = node.child_by_field_name("value")
        if value is not None and value.type in _JS_FUNCTIONS:
            return _field_text(node, "property") or _field_text(node, "name")
    return None


# ---------------------------------------------------------------- go

_GO_TYPE_KINDS = {"struct_type": "struct", "interface_type": "interface"}
_GO_GENERIC = re.compile(r"\[[^\]]*\]")
_GO_WORD = re.compile(r"[^\W\d]\w*")


def _go_defs(children: Iterable[Node]) -> list[_Def]:
    """Functions, methods (qualified by receiver type) and type declarations."""
    defs = (_go_def(child) for child in children)
    return [d for d in defs if d is not None]


def _go_def(node: Node) -> _Def | None:
    name = _field_text(node, "name")
    if node.type == "function_declaration" and name:
        return _new_def(node, "function", "function", name, name)
    if node.type == "method_declaration" and name:
        receiver = _go_receiver(node.child_by_field_name("receiver"))
        qualname = f"{receiver}.{name}" if receiver else name
        return _new_def(node, "method", "method", name, qualname)
    if node.type == "type_declaration":
        return _go_types(node)
    return None


def _go_receiver(receiver: Node | None) -> str:
    """The receiver's type name: ``(s *Server[T])`` gives ``Server``."""
    words = _GO_WORD.findall(_GO_GENERIC.sub("", _text(receiver)))
    return words[-1] if words else ""


def _go_types(node: Node) -> _Def | None:
    specs = [c for c in node.named_children if c.type in ("type_spec", "type_alias")]
    if not specs:
        return None
    first, *rest = (_go_spec(node if len(specs) == 1 else spec, spec) for spec in specs)
    first.extra = rest
    if rest:
        first.start, first.end, first.lead = node.start_point.row, _last_row(node), _lead_row(node)
    return first


def _go_spec(outer: Node, spec: Node) -> _Def:
    name = _field_text(spec, "name") or "_"
    type_node = spec.child_by_field_name("type")
    def_kind = _GO_TYPE_KINDS.get(type_node.type if type_node is not None else "", "type")
    return _new_def(outer, "class", def_kind, name, name)


_EXTRACTORS: dict[str, Callable[[Iterable[Node]], list[_Def]]] = {
    "python": _python_defs,
    "javascript": _js_defs,
    "typescript": _js_defs,
    "tsx": _js_defs,
    "go": _go_defs,
}


# ---------------------------------------------------------------- prose

_ATX_CLOSE = re.compile(r"(?:^|\s+)#+\s*$")
_EMPHASIS = re.compile(r"[*`]+")


def _parse_markdown(text: str, lines: list[str]) -> ParsedFile:
    root = parser("markdown").parse(_encode(text)).root_node
    nodes = QueryCursor(query("markdown", MARKDOWN_HEADINGS)).captures(root).get("h", [])
    headings = [(n.start_point.row, _heading_text(n)) for n in _sorted(nodes)]
    return _sections("markdown", lines, headings)


def _heading_text(node: Node) -> str | None:
    content = _text(node.child_by_field_name("heading_content"))
    if node.type == "atx_heading":
        content = _ATX_CLOSE.sub("", content)
    return " ".join(_EMPHASIS.sub("", content).split()) or None


def _sections(language: str, lines: list[str], headings: list[_Heading]) -> ParsedFile:
    """One chunk per heading, running to the next heading; text before the first is its own."""
    if not headings or headings[0][0] > 0:
        headings = [(0, None), *headings]
    spans: list[_Span] = []
    definitions: list[Definition] = []
    for i, (row, title) in enumerate(headings):
        end = headings[i + 1][0] - 1 if i + 1 < len(headings) else len(lines) - 1
        span = _trim(lines, row, end)
        if span is None:
            continue
        spans.append((span[0], span[1], "section", title))
        if title is not None:
            definitions.append(Definition(title, title, "heading", span[0] + 1, span[1] + 1))
    return ParsedFile(language, _to_chunks(lines, spans), definitions, [], [])


_RST_ADORNMENT = re.compile(r"""([=\-~^"'`#*+:._])\1+[ \t]*$""")


def _parse_rst(lines: list[str]) -> ParsedFile:
    return _sections("rst", lines, _rst_headings(lines))


def _rst_headings(lines: list[str]) -> list[_Heading]:
    """Titles underlined (and optionally overlined) with a run of one punctuation character."""
    headings: list[_Heading] = []
    row = 0
    while row < len(lines) - 1:
        start = _rst_heading_start(lines, row)
        if start is None:
            row += 1
            continue
        headings.append((start, lines[row].strip()))
        row += 2
    return headings


def _rst_heading_start(lines: list[str], row: int) -> int | None:
    title, under = lines[row], lines[row + 1]
    if not title.strip() or _RST_ADORNMENT.match(title) or not _RST_ADORNMENT.match(under):
        return None
    if len(under.rstrip()) < len(title.rstrip()):
        return None
    above = lines[row - 1] if row > 0 else ""
    if above.rstrip() == under.rstrip():
        return row - 1
    if title[0].isspace() or above.strip():
        return None
    return row


def _text_windows(lines: list[str]) -> list[ParsedChunk]:
    """Overlapping fixed windows, for text with no structure worth parsing."""
    chunks: list[ParsedChunk] = []
    step = TEXT_WINDOW_LINES - TEXT_WINDOW_OVERLAP
    for lo in range(0, len(lines), step):
        hi = min(lo + TEXT_WINDOW_LINES, len(lines)) - 1
        chunks.append(ParsedChunk(lo + 1, hi + 1, "window", None, "\n".join(lines[lo : hi + 1])))
        if hi == len(lines) - 1:
            break
    return chunks
