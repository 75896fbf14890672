"""The tools a model sees: the sandbox's file tools plus indexed search, answered as capped JSON.

A tool call never raises: a refused path, a bad argument or an unknown tool comes back as
`{"error": ...}` so the model can correct itself on the next turn.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from peek.agent.models import ToolSpec
from peek.contextmap.trajectory import Citation
from peek.errors import PeekError
from peek.sandbox import TOOL_SPECS, FileTools, SandboxError

if TYPE_CHECKING:
    from peek.agent.workspace import Workspace
    from peek.db import Database
    from peek.sandbox.results import SymbolHit

MAX_SYMBOL_HITS = 200

log = logging.getLogger("peek.agent.tools")
MAX_TOOL_CHARS = 6000  # what one tool result may cost the model's context
FILE_TOOL_CHARS = 4000  # the sandbox's own cap, below ours so it cuts first and says where
DEFAULT_K = 8
MAX_K = 30
MAX_PATHS = 20

SEARCH_SPEC: dict[str, Any] = {
    "name": "search",
    "description": "Rank the corpus's code and text chunks for a query (BM25 over identifiers, "
    "paths and words) and get path, line span, symbol and score; call it first when you do not "
    "know where something lives.",
    "parameters": {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "Words, identifiers or a question."},
            "k": {"type": "integer", "description": f"How many hits (default {DEFAULT_K}).",
                  "minimum": 1, "maximum": MAX_K},
        },
        "required": ["query"],
        "additionalProperties": False,
    },
}


STEP_OUTPUT_CHARS = 2000
THOUGHT_CHARS = 1000


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """One executed call: what the model sees, whether it worked, and what it touched."""

    tool: str
    args: dict[str, Any]
    ok: bool
    content: str
    paths: tuple[str, ...] = ()
    read: tuple[Citation, ...] = ()
    seen: tuple[Citation, ...] = ()

    def step(self, thought: str = "") -> dict[str, Any]:
        """The trajectory-contract step the cache policy learns from: the call, what it
        returned (capped) and the reasoning the model gave with it."""
        return {"tool": self.tool, "args": self.args, "paths": list(self.paths), "ok": self.ok,
                "output": self.content[:STEP_OUTPUT_CHARS], "thought": thought[:THOUGHT_CHARS]}


class AgentTools:
    """The tool set of one corpus: specs for the model, and execution that never raises."""

    def __init__(self, peek: Workspace, max_chars: int = MAX_TOOL_CHARS) -> None:
        self.peek = peek
        self.max_chars = max_chars
        self.files = FileTools(peek.root, max_output_chars=min(FILE_TOOL_CHARS, max_chars),
                               max_file_bytes=peek.settings.max_file_bytes,
                               symbol_lookup=self._lookup)
        self._corpus_id = peek.corpus_id

    @property
    def specs(self) -> list[ToolSpec]:
        """Exactly the sandbox's tools, then search."""
        return [ToolSpec(s["name"], s["description"], s["parameters"])
                for s in [*TOOL_SPECS, SEARCH_SPEC]]

    def run(self, name: str, args: Mapping[str, Any]) -> ToolOutcome:
        """Run one call; any failure becomes an error result the model can read."""
        plain = dict(args) if isinstance(args, Mapping) else {}
        try:
            result = self.search(plain) if name == "search" else self.files.call(name, plain)
        except (SandboxError, PeekError) as exc:
            return self._failed(name, plain, str(exc))
        except Exception as exc:  # a tool bug must not end the session; the model sees it
            log.warning("tool %s failed: %r", name, exc)
            return self._failed(name, plain, f"{type(exc).__name__}: {exc}")
        return ToolOutcome(name, plain, True, cap_json(result, self.max_chars),
                           touched_paths(name, result), read_spans(name, result),
                           seen_spans(result))

    def search(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """The `search` tool: ranked chunks of the index as plain dicts."""
        query, k = search_args(args)
        return {"query": query, "hits": [hit.to_dict() for hit in self.peek.search(query, k)]}

    def _lookup(self, name: str) -> list[SymbolHit]:
        """find_symbol from the index's symbols table, cheaper and exacter than regexes."""
        return lookup_symbols(self.peek.db, self._corpus_id, name)

    def _failed(self, name: str, args: dict[str, Any], error: str) -> ToolOutcome:
        """An error the model reads, so it can fix the call on its next turn."""
        return ToolOutcome(name, args, False, cap_json({"error": error}, self.max_chars))


def search_args(args: Mapping[str, Any]) -> tuple[str, int]:
    """Validate search's arguments, with the same gentle coercion as the sandbox's tools."""
    unknown = sorted(set(args) - {"query", "k"})
    if unknown:
        raise SandboxError(f"unknown argument {unknown[0]!r} for search; allowed: query, k")
    query = args.get("query")
    if not isinstance(query, str) or not query.strip():
        raise SandboxError("search needs a non-empty 'query' string")
    return query.strip(), _k(args.get("k"))


def _k(value: object) -> int:
    """How many hits: models send numbers as strings too; more than MAX_K floods the context."""
    if value is None:
        return DEFAULT_K
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SandboxError(f"argument 'k' of search must be an integer >= 1, got {value!r}")
    return min(value, MAX_K)


def cap_json(result: Mapping[str, Any], max_chars: int) -> str:
    """JSON for the model, cut at `max_chars` with a note saying how much was left out."""
    text = json.dumps(result, ensure_ascii=False)
    if len(text) <= max_chars:
        return text
    return (f"{text[:max_chars]} ... [output cut at {max_chars} of {len(text)} characters; "
            "narrow the call: read_file start/end, a glob, or a smaller k]")


def touched_paths(tool: str, result: Mapping[str, Any]) -> tuple[str, ...]:
    """The corpus files a result names, in order, at most MAX_PATHS of them."""
    if tool == "read_file":
        found: Iterable[Any] = [result.get("path")]
    elif tool == "glob":
        found = result.get("paths", [])
    else:
        found = (item.get("path") for item in _items(result))
    unique = dict.fromkeys(p for p in found if isinstance(p, str) and p)
    return tuple(unique)[:MAX_PATHS]


def read_spans(tool: str, result: Mapping[str, Any]) -> tuple[Citation, ...]:
    """The line span a read_file call showed (none for an empty file)."""
    if tool != "read_file":
        return ()
    start, end = result.get("start", 0), result.get("end", 0)
    if not isinstance(start, int) or not isinstance(end, int) or start < 1 or end < start:
        return ()
    return (Citation(str(result["path"]), start, end),)


def seen_spans(result: Mapping[str, Any]) -> tuple[Citation, ...]:
    """Spans a search, find_symbol or grep located without reading them."""
    spans = []
    for item in _items(result):
        start = item.get("start_line", item.get("line"))
        end = item.get("end_line", start)
        if isinstance(item.get("path"), str) and isinstance(start, int) and isinstance(end, int):
            spans.append(Citation(item["path"], start, max(start, end)))
    return tuple(spans)


def _items(result: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """The located items of a grep, find_symbol or search result."""
    for key in ("matches", "hits"):
        for item in result.get(key, []):
            if isinstance(item, Mapping):
                yield item


def lookup_symbols(
    db: Database, corpus_id: int, name: str, limit: int = MAX_SYMBOL_HITS
) -> list[SymbolHit]:
    """Definitions from the index's symbols table (name or `Class.method`), in path order: no
    scan of the tree."""
    from sqlalchemy import or_, select

    from peek.sandbox.results import SymbolHit
    from peek.schema import File, Symbol

    wanted = name.strip()
    query = (
        select(File.path, Symbol.qualname, Symbol.kind, Symbol.start_line, Symbol.end_line)
        .join(File, File.id == Symbol.file_id)
        .where(File.corpus_id == corpus_id, or_(Symbol.name == wanted, Symbol.qualname == wanted))
        .order_by(File.path, Symbol.start_line)
        .limit(limit)
    )
    with db.read() as conn:
        rows = conn.execute(query).all()
    return [SymbolHit(*row) for row in rows]
