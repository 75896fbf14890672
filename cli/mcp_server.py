"""`peek mcp`: the MCP front door, a thin layer over the `Peek` service for IDE agents.

stdout is the protocol channel over stdio: nothing here prints to it. litellm and langgraph are
imported only inside `peek_ask`, so the server is ready as soon as the MCP SDK is.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError, UnexpectedToolError
from mcp.server.mcpserver.resources import ResourceSecurity
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, TextContent
from pydantic import Field, ValidationError

from peek.bounds import SUMMARY_MAX

if TYPE_CHECKING:
    from peek.agent.models import Model
    from peek.sandbox import FileTools
    from peek.service import Peek

log = logging.getLogger("peek.mcp")

T = TypeVar("T")
Transport = Literal["stdio", "http"]
MAP_URI = "peek://{corpus}/map"
BUSY_RETRIES = 8
BUSY_FIRST_WAIT_S = 0.05
BUSY_MAX_WAIT_S = 2.0
ROOTS_TIMEOUT_S = 5.0

INSTRUCTIONS = (
    "peek keeps a context map per corpus (a repository or a folder of documents): what earlier "
    "sessions learned about where things are. Call peek_map first, before exploring a corpus; "
    "use peek_search and peek_read to find and read code; call peek_record last, after you "
    "finish a task, so the map learns from it. Pass the same absolute corpus path every time. "
    "The server only touches corpora under the roots the host declares (MCP roots) or the "
    "operator allows (`peek mcp --root DIR`, PEEK_ROOTS), and serves only indexed corpora: "
    "files the index excludes (.git, ignore files, .env and key files) are never served."
)

DESCRIPTIONS = {
    "peek_map": (
        "Call peek_map first, before exploring or editing a corpus: it returns what earlier "
        "sessions learned about where things are (entry points, key files, conventions, "
        "pitfalls), rendered within a token budget, plus the same entries as data. Go straight "
        "to the files it names instead of listing and grepping; entries marked (stale) point at "
        "code that changed since, so re-check them. `budget` renders this view within that many "
        "tokens (the stored budget stays). If the corpus is not indexed yet, call peek_index "
        "once, then retry."
    ),
    "peek_search": (
        "Call peek_search when the map does not point at what you need: it ranks code and "
        "document chunks for words, identifiers or a question (BM25 over code-aware tokens) and "
        "returns each hit's path, start_line and end_line. Read the best hits with peek_read."
    ),
    "peek_read": (
        "Call peek_read to read numbered lines of one file of the corpus: `path` relative to the "
        "corpus root, `start_line`/`end_line` 1-based and inclusive (omit both for the whole "
        "file, cut at a size limit with a note saying how to read on). Reads never leave the "
        "corpus root, which must be indexed and under an allowed root; files the index "
        "excludes (.git, ignored files, .env, keys, credentials) are refused. Report the files "
        "you read with peek_record when you finish."
    ),
    "peek_ask": (
        "Call peek_ask to hand a whole where-is or how-does question to peek's own agent (the "
        "model given to `peek mcp --model`): it searches and reads the corpus itself and answers "
        "with cited path:start-end locations, within `max_steps` tool steps. Its answer is a "
        "hypothesis until confirmed: when you finish the task, call peek_record with the "
        "`session` it returned and the files you edited, so the right files are learned."
    ),
    "peek_record": (
        "Call peek_record last, after you finish a task in a corpus: give the task or question, "
        "the files you read (files_read) and edited (files_edited), and whether it worked "
        "(success), and, if you can, what the change did in a sentence or two or its commit "
        "message (summary). peek's cache policy learns from it, so the next peek_map sends "
        "future sessions to the right files sooner. If you have a full trajectory object "
        "({question, steps, answer, citations, outcome}), pass it as `trajectory` instead of "
        "files_read."
    ),
    "peek_status": (
        "Call peek_status to check whether peek's index still matches the corpus: indexed git "
        "commit vs HEAD, files changed, added or removed since the last index, index age in "
        "seconds, and the map version. When `dirty` is true and you need search results that "
        "include those changes, call peek_index."
    ),
    "peek_index": (
        "Call peek_index to index a corpus: once, the first time you use peek on it (the other "
        "tools say when it is not indexed), and again after files changed (peek_status shows "
        "dirty). Incremental: only added or changed files are read again. The corpus must be "
        "an MCP root of the host, or under one, or under a folder given to `peek mcp --root`."
    ),
    "peek_memory_search": (
        "Call peek_memory_search to recall what past sessions or ingested conversations said "
        "about something (who did what, when, which files a past task touched): ranked memory "
        "items, each naming the turns it draws on, within a token budget. Verify code facts "
        "with peek_read before relying on them."
    ),
}

CorpusArg = Annotated[str, Field(
    description="The corpus: absolute path of the repository or folder; the same in every call.")]
QueryArg = Annotated[str, Field(description="Words, identifiers or a question.")]
KArg = Annotated[int, Field(description="How many hits to return (at least 1).")]
MemoryBudgetArg = Annotated[int, Field(
    description="Token budget of the returned memory block.")]
BudgetArg = Annotated[int | None, Field(
    description="A token budget for this view of the map; omit for the stored one.")]
EvolveArg = Annotated[int | None, Field(
    description="Freeze the map after this many policy updates in all (PEEK's m); omit to "
                "leave the stored setting. Setting it writes.")]
PathArg = Annotated[str, Field(description="A file path relative to the corpus root.")]
StartArg = Annotated[int | None, Field(description="First line to show (1-based); omit for 1.")]
EndArg = Annotated[int | None, Field(description="Last line to show (inclusive); omit for all.")]
QuestionArg = Annotated[str, Field(description="The question or task, in the user's words.")]
StepsArg = Annotated[int, Field(description="Stop after this many agent steps.")]
ReadArg = Annotated[list[str] | None, Field(description="Files you read, in reading order.")]
EditedArg = Annotated[list[str] | None, Field(description="Files you edited to finish the task.")]
SuccessArg = Annotated[bool | None, Field(
    description="Whether the task succeeded (tests passed, the user accepted); omit if unknown.")]
SummaryArg = Annotated[str | None, Field(
    description="What the change did, in words (its commit message or a short paragraph, at "
                f"most {SUMMARY_MAX} characters); omit if unknown. A new summary for a "
                "recorded session replaces its old one.")]
SessionArg = Annotated[str | None, Field(
    description="The `session` peek_ask returned, or your own stable id for this task: an "
                "outcome is applied once per session, so repeating a report changes nothing.")]
CorrectArg = Annotated[bool, Field(
    description="True replaces the session's recorded outcome with this report (the old one "
                "is kept in the audit trail); use it when an earlier report was wrong.")]
RetractArg = Annotated[bool, Field(
    description="True withdraws the session's recorded outcome (give `session` and no "
                "outcome): what it taught is taken back.")]
TrajectoryArg = Annotated[dict[str, Any] | None, Field(
    description="A full trajectory: {question, steps: [{tool, args, paths, ok}], answer, "
                "citations: [{path, start_line, end_line}], outcome: {edited_files, success, "
                "summary?}}.")]


@dataclass(frozen=True)
class Amend:
    """How a report relates to the session's recorded outcome: replace it, or withdraw it."""

    correct: bool = False
    retract: bool = False


@dataclass
class OpenCorpus:
    """One corpus's service and sandbox, kept warm for the life of the server."""

    peek: Peek
    files: FileTools
    index_lock: threading.Lock = field(default_factory=threading.Lock)


class RootPolicy:
    """Which folders the server may touch: under an operator's or the host's declared roots."""

    def __init__(self, configured: Sequence[str | os.PathLike[str]] = ()) -> None:
        self.configured = tuple(_real(p) for p in configured)

    def check(self, key: str, host_roots: Sequence[str] = ()) -> None:
        """Refuse a corpus that is not one of the roots or inside one."""
        from peek.errors import QueryError

        roots = self.configured + tuple(_real(p) for p in host_roots)
        if not roots:
            raise QueryError(
                "no corpus roots are allowed",
                "start the server with `peek mcp --root DIR` or PEEK_ROOTS, or declare MCP roots",
            )
        if not any(key == root or key.startswith(root.rstrip("/") + "/") for root in roots):
            raise QueryError(
                f"{key} is outside the allowed corpus roots ({', '.join(roots)})",
                "pass a corpus under one of them, or add its folder with --root",
            )


def _real(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


def configured_roots(roots: Sequence[Path]) -> list[str]:
    """`--root` folders plus PEEK_ROOTS (os.pathsep-separated); each must be a folder."""
    from peek.errors import ConfigError

    named = [(str(r), "--root") for r in roots]
    env = os.environ.get("PEEK_ROOTS", "")
    named += [(p, "PEEK_ROOTS") for p in env.split(os.pathsep) if p.strip()]
    for path, source in named:
        if "\0" in path or not os.path.isdir(os.path.expanduser(path)):
            raise ConfigError(f"{source} names {path!r}, which is not a folder", "fix the path")
    return [_real(p) for p, _ in named]


def host_root_paths(uris: Sequence[str]) -> list[str]:
    """Local folder paths of the host's MCP roots (file:// URIs); other schemes are ignored."""
    from urllib.parse import unquote, urlsplit

    paths = []
    for uri in uris:
        parts = urlsplit(str(uri))
        if parts.scheme == "file" and parts.netloc in ("", "localhost") and parts.path:
            paths.append(unquote(parts.path))
    return paths


class Corpora:
    """`Peek` objects per corpus path, so every call after the first reuses an open store."""

    def __init__(self, home: Path | None, policy: RootPolicy | None = None) -> None:
        self.home = home
        self.policy = policy or RootPolicy()
        self._open: dict[str, OpenCorpus] = {}
        self._lock = threading.Lock()

    def get(self, corpus: str, host_roots: Sequence[str] = (), *,
            indexed: bool = True) -> OpenCorpus:
        """The open corpus for a path under an allowed root (and indexed, unless told not)."""
        from peek.errors import NotIndexedError

        key = corpus_key(corpus)
        self.policy.check(key, host_roots)
        with self._lock:
            found = self._open.get(key)
            if found is None:
                found = self._open[key] = open_corpus(key, self.home)
        if indexed and not found.peek.indexed:
            raise NotIndexedError(f"{key} is not indexed yet", "peek only serves indexed corpora")
        return found

    def close(self) -> None:
        """Release every store's connections."""
        with self._lock:
            for opened in self._open.values():
                opened.peek.close()
            self._open.clear()


def corpus_key(corpus: str) -> str:
    """The real path of a corpus argument; an empty one is refused rather than meaning cwd."""
    from peek.errors import QueryError

    if not corpus.strip():
        raise QueryError("corpus is empty", "give the corpus folder's absolute path")
    if "\0" in corpus:
        raise QueryError("corpus contains a NUL byte", "give the corpus folder's absolute path")
    if not os.path.isabs(os.path.expanduser(corpus)):
        raise QueryError(f"corpus {corpus!r} is not an absolute path", "give the absolute path")
    return _real(corpus)


def open_corpus(path: str, home: Path | None) -> OpenCorpus:
    """Open the service (checks the folder) and its sandbox with the home's file size limit."""
    from peek.sandbox import FileTools
    from peek.service import Peek

    peek = Peek(path, home)
    files = FileTools(peek.root, max_file_bytes=peek.settings.max_file_bytes)
    return OpenCorpus(peek, files)


def stored_session(peek: Peek, session: str) -> bool:
    """Whether peek stored this session (a peek_ask), so its outcome can attach to it."""
    from peek.agent.session import SessionStore
    from peek.errors import PeekError

    try:
        SessionStore(peek.db, peek.corpus_id).load(session)
    except PeekError:
        return False
    return True


def host_trajectory(question: str, files_read: list[str]) -> dict[str, Any]:
    """A trajectory-contract dict for a host agent's report: one read step per file read."""
    steps = [{"tool": "read_file", "args": {"path": p}, "paths": [p], "ok": True}
             for p in dict.fromkeys(files_read)]
    return {"question": question, "steps": steps, "answer": "", "citations": []}


Roots = Sequence[str]


class PeekTools:
    """The tools' work as plain dicts: what each MCP tool returns when nothing goes wrong.

    `roots` are the host's declared MCP roots for this call; the server's own `--root` folders
    always count too (see RootPolicy).
    """

    def __init__(self, corpora: Corpora, model: str | None, api_base: str | None) -> None:
        self.corpora = corpora
        self.model_spec = model
        self.api_base = api_base
        self._model: tuple[Model | None] | None = None
        self._model_lock = threading.Lock()

    def map(self, corpus: str, budget: int | None, evolve_steps: int | None = None,
            roots: Roots = ()) -> dict[str, Any]:
        """The rendered map plus the `peek map --json` fields (a pure read without m)."""
        peek = self.corpora.get(corpus, roots).peek
        if evolve_steps is not None:
            peek.map_configure(evolve_steps=evolve_steps)
        view = peek.map(budget)
        return {"rendered": view.text, **view.to_dict()}

    def search(self, corpus: str, query: str, k: int, roots: Roots = ()) -> dict[str, Any]:
        """The `peek search --json` shape."""
        hits = self.corpora.get(corpus, roots).peek.search(query, k)
        return {"results": [h.to_dict() for h in hits]}

    def read(self, corpus: str, path: str, start: int | None, end: int | None,
             roots: Roots = ()) -> dict[str, Any]:
        """A sandboxed slice of one file of an indexed corpus."""
        return self.corpora.get(corpus, roots).files.read_file(path, start, end).to_dict()

    def status(self, corpus: str, roots: Roots = ()) -> dict[str, Any]:
        """How current the index and map are (also for a corpus not indexed yet)."""
        return self.corpora.get(corpus, roots, indexed=False).peek.status().to_dict()

    def memory_search(self, corpus: str, query: str, k: int, budget: int,
                      roots: Roots = ()) -> dict[str, Any]:
        """The `peek memory search --json` shape."""
        return self.corpora.get(corpus, roots).peek.memory_search(query, k, budget).to_dict()

    def index(self, corpus: str, roots: Roots = ()) -> dict[str, Any]:
        """Re-index; one index run per corpus at a time in this process (they would race)."""
        opened = self.corpora.get(corpus, roots, indexed=False)
        with opened.index_lock:
            return dict(opened.peek.index().to_dict())

    def record(self, corpus: str, question: str, files_read: list[str] | None,
               files_edited: list[str] | None, success: bool | None,
               trajectory: dict[str, Any] | None, roots: Roots = (),
               session: str | None = None, summary: str | None = None,
               amend: Amend | None = None) -> dict[str, Any]:
        """Teach the map from a host agent's session report (once per session id)."""
        from peek.errors import QueryError
        from peek.sandbox.paths import corpus_path

        amend = amend or Amend()
        peek = self.corpora.get(corpus, roots).peek
        if amend.retract:
            return self.retract(peek, session, bool(files_edited or trajectory or summary)
                                or success is not None or amend.correct)
        if not question.strip() and not str((trajectory or {}).get("question") or "").strip():
            raise QueryError("the question is empty", "say what the task or question was")
        raw: dict[str, Any] | None
        if trajectory is not None:
            raw = {"question": question, **trajectory}
        elif files_read is None and session is not None and stored_session(peek, session):
            raw = None  # the outcome of a peek_ask session: learn from what that ask scored
        else:
            raw = host_trajectory(question, [corpus_path(peek.root, p) for p in files_read or ()])
        result = peek.record(raw, session=session, edited=files_edited or (), success=success,
                             model=self.model(), summary=summary, correct=amend.correct)
        return result.to_dict()

    @staticmethod
    def retract(peek: Peek, session: str | None, more: bool) -> dict[str, Any]:
        """`retract`: one session's outcome withdrawn, nothing else said with it."""
        from peek.errors import QueryError

        if session is None or more:
            raise QueryError("retract needs a session and no outcome, trajectory or correct",
                             "give only corpus, question, session and retract=true")
        return peek.retract(session).to_dict()

    def ask(self, corpus: str, question: str, max_steps: int, roots: Roots = ()) -> dict[str, Any]:
        """Answer with peek's own agent; the model is loaded on the first ask, not at start."""
        from peek.agent.session import Budgets

        peek = self.corpora.get(corpus, roots).peek
        return peek.ask(question, self.model(), Budgets(max_steps)).to_dict()

    def model(self) -> Model | None:
        """The configured model, resolved once (this is where litellm may be imported)."""
        from peek.agent.registry import resolve_model

        with self._model_lock:
            if self._model is None:
                self._model = (resolve_model(self.model_spec, self.api_base,
                                             home=self.corpora.home),)
            return self._model[0]


def tool_result(action: Callable[[], dict[str, Any]], *, retry: bool = True) -> CallToolResult:
    """Run one tool's work; known failures come back as a one-line tool error, never a crash.

    Only work that is safe to repeat is retried on a busy store: a retry of `peek_record` or
    `peek_ask` could apply a session twice or pay the model twice.
    """
    try:
        data = with_busy_retry(action) if retry else action()
    except Exception as exc:  # noqa: BLE001 - every failure must reach the client as a result
        return error_result(error_message(exc))
    text = json.dumps(data, ensure_ascii=False)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


def error_result(message: str) -> CallToolResult:
    """An `is_error` result that carries just the message."""
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)


def error_message(exc: Exception) -> str:
    """The one line a host agent sees; unexpected errors are also logged with a traceback."""
    from sqlalchemy.exc import OperationalError

    from peek.cli.errors import not_utf8, out_of_range, store_trouble
    from peek.errors import NotIndexedError, PeekError
    from peek.sandbox import SandboxError

    if isinstance(exc, NotIndexedError):
        return f"{exc.message} (call peek_index with this corpus first)"
    if isinstance(exc, PeekError | SandboxError):
        return str(exc)
    if isinstance(exc, OperationalError | sqlite3.OperationalError):
        return store_trouble(exc)
    if isinstance(exc, UnicodeEncodeError):
        return not_utf8(exc)
    if isinstance(exc, OverflowError):
        return out_of_range(exc)
    log.exception("unexpected error in a peek tool")
    return " ".join(f"unexpected error ({type(exc).__name__}): {exc}".split())


def with_busy_retry(action: Callable[[], T]) -> T:
    """Retry with jittered backoff while SQLite says busy/locked: other clients share the store."""
    from sqlalchemy.exc import OperationalError

    for attempt in range(BUSY_RETRIES - 1):
        try:
            return action()
        except (OperationalError, sqlite3.OperationalError) as exc:
            if not is_busy(exc):
                raise
            wait = min(BUSY_FIRST_WAIT_S * 2**attempt, BUSY_MAX_WAIT_S)
            time.sleep(wait * (0.5 + random.random()))
    return action()


def is_busy(exc: Exception) -> bool:
    """True for SQLite's transient lock errors (worth retrying), not for real failures."""
    text = str(getattr(exc, "orig", exc)).lower()
    return "locked" in text or "busy" in text


async def host_roots(ctx: Context | None) -> list[str]:
    """The folders of the host's MCP roots, asked for on each call (they can change)."""
    from mcp.types import ClientCapabilities, RootsCapability

    if ctx is None:
        return []
    try:
        session = ctx.session
        if not session.check_client_capability(ClientCapabilities(roots=RootsCapability())):
            return []
        with anyio.fail_after(ROOTS_TIMEOUT_S):
            listed = await session.list_roots()
    except Exception:  # noqa: BLE001 - no usable roots from the host means none
        return []
    return host_root_paths([str(root.uri) for root in listed.roots])


async def run_tool(ctx: Context | None, work: Callable[[Roots], dict[str, Any]],
                   retry: bool = True) -> CallToolResult:
    """Ask the host for its roots, then do the blocking work in a worker thread."""
    roots = await host_roots(ctx)
    return await anyio.to_thread.run_sync(lambda: tool_result(lambda: work(roots), retry=retry))


class PeekMcpTools:
    """The MCP tool functions: their signatures are the tools' input schemas."""

    def __init__(self, tools: PeekTools) -> None:
        self.tools = tools

    async def peek_map(self, corpus: CorpusArg, budget: BudgetArg = None,
                       evolve_steps: EvolveArg = None,
                       ctx: Context | None = None) -> CallToolResult:
        """The map first, so the agent starts where earlier sessions ended."""
        return await run_tool(
            ctx, lambda roots: self.tools.map(corpus, budget, evolve_steps, roots))

    async def peek_search(self, corpus: CorpusArg, query: QueryArg, k: KArg = 10,
                          ctx: Context | None = None) -> CallToolResult:
        """Ranked chunks when the map does not say where something is."""
        return await run_tool(ctx, lambda roots: self.tools.search(corpus, query, k, roots))

    async def peek_read(self, corpus: CorpusArg, path: PathArg, start_line: StartArg = None,
                        end_line: EndArg = None, ctx: Context | None = None) -> CallToolResult:
        """Numbered lines, so the agent can cite exact locations."""
        return await run_tool(
            ctx, lambda roots: self.tools.read(corpus, path, start_line, end_line, roots))

    async def peek_ask(self, corpus: CorpusArg, question: QuestionArg, max_steps: StepsArg = 12,
                       ctx: Context | None = None) -> CallToolResult:
        """A cited answer from peek's own agent, for hosts that want to delegate a question."""
        return await run_tool(
            ctx, lambda roots: self.tools.ask(corpus, question, max_steps, roots), retry=False)

    async def peek_record(self, corpus: CorpusArg, question: QuestionArg,
                          files_read: ReadArg = None, files_edited: EditedArg = None,
                          success: SuccessArg = None, trajectory: TrajectoryArg = None,
                          session: SessionArg = None, summary: SummaryArg = None,
                          correct: CorrectArg = False, retract: RetractArg = False,
                          ctx: Context | None = None) -> CallToolResult:
        """The host's session report, which is what teaches the map."""
        return await run_tool(ctx, lambda roots: self.tools.record(
            corpus, question, files_read, files_edited, success, trajectory, roots, session,
            summary, Amend(correct, retract)), retry=False)

    async def peek_status(self, corpus: CorpusArg, ctx: Context | None = None) -> CallToolResult:
        """Whether the index still describes the corpus."""
        return await run_tool(ctx, lambda roots: self.tools.status(corpus, roots))

    async def peek_index(self, corpus: CorpusArg, ctx: Context | None = None) -> CallToolResult:
        """Re-index on request, since hosts know when they changed files."""
        return await run_tool(ctx, lambda roots: self.tools.index(corpus, roots))

    async def peek_memory_search(self, corpus: CorpusArg, query: QueryArg, k: KArg = 10,
                                 budget: MemoryBudgetArg = 2000,
                                 ctx: Context | None = None) -> CallToolResult:
        """Episodic recall, for questions about what happened rather than where code is."""
        return await run_tool(
            ctx, lambda roots: self.tools.memory_search(corpus, query, k, budget, roots))


def strict_schema(schema: Any) -> Any:
    """Plain JSON Schema for strict clients: `X | None` becomes an optional `X` with a `type`."""
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict_schema(value) for key, value in schema.items()}
    branches = out.get("anyOf")
    if isinstance(branches, list):
        kept = [b for b in branches if b != {"type": "null"}]
        if len(kept) == 1 and len(kept) < len(branches):
            del out["anyOf"]
            out = {**kept[0], **out}
            if "default" in out and out["default"] is None:
                del out["default"]
    return out


class PeekTool(Tool):
    """A tool whose argument errors are one line naming each bad argument, like peek's own."""

    async def run(self, arguments: dict[str, Any], context: Any,
                  convert_result: bool = False) -> Any:
        """The SDK's run; a schema mismatch is re-worded, keeping the ValidationError cause."""
        try:
            return await super().run(arguments, context, convert_result)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(exc, UnexpectedToolError) or not isinstance(cause, ValidationError):
                raise
            raise ToolError(argument_errors(self.name, cause)) from cause


def argument_errors(tool: str, exc: ValidationError) -> str:
    """`peek_search: bad arguments: query: required; k: ...` without pydantic's URLs."""
    parts = []
    for err in exc.errors(include_url=False):
        name = ".".join(str(p) for p in err["loc"]) or "arguments"
        message = "required" if err["type"] == "missing" else err["msg"]
        parts.append(f"{name}: {message}")
    return " ".join(f"{tool}: bad arguments: {'; '.join(parts)} (see the tool's input "
                    "schema)".split())


def make_tools(mcp_tools: PeekMcpTools, with_ask: bool) -> list[Tool]:
    """The registered tools, with strict input schemas; peek_ask only when a model was given."""
    names = [n for n in DESCRIPTIONS if with_ask or n != "peek_ask"]
    tools = []
    for name in names:
        tool = PeekTool.from_function(getattr(mcp_tools, name), name=name,
                                      description=DESCRIPTIONS[name])
        tool.parameters = strict_schema(tool.parameters)
        tools.append(tool)
    return tools


def add_map_resource(server: MCPServer, corpora: Corpora) -> None:
    """`peek://{corpus}/map` (corpus URL-encoded): the map for hosts that read resources."""

    def corpus_map(corpus: str) -> str:
        """The rendered map text (an indexed corpus under the server's --root folders)."""
        try:
            return with_busy_retry(lambda: corpora.get(corpus).peek.map().text)
        except Exception as exc:  # noqa: BLE001 - reported to the client as a resource error
            raise ResourceError(error_message(exc)) from exc

    server.resource(MAP_URI, name="peek_map", mime_type="text/plain",
                    description="The corpus's context map, rendered; the corpus path URL-encoded.",
                    security=ResourceSecurity(exempt_params={"corpus"}))(corpus_map)


def build_server(home: Path | None, model: str | None, api_base: str | None,
                 roots: Sequence[str] = ()) -> MCPServer:
    """The peek MCP server: tools over one `Peek` per corpus; peek_ask only with a model."""
    return assemble(home, model, api_base, roots)[0]


def assemble(home: Path | None, model: str | None, api_base: str | None,
             roots: Sequence[str] = ()) -> tuple[MCPServer, Corpora]:
    """The server and the corpus cache it serves from (closed by `serve` on the way out)."""
    from peek import __version__

    corpora = Corpora(home, RootPolicy(roots))
    tools = make_tools(PeekMcpTools(PeekTools(corpora, model, api_base)), model is not None)
    server: MCPServer = MCPServer("peek", version=__version__, instructions=INSTRUCTIONS,
                                  tools=tools, log_level="WARNING")
    add_map_resource(server, corpora)
    return server, corpora


def serve(transport: Transport, host: str, port: int, home: Path | None, model: str | None,
          api_base: str | None, roots: Sequence[str] = ()) -> None:
    """Run until the client disconnects (stdio) or the process is stopped (http)."""
    if not 0 < port < 65536:
        from peek.errors import ConfigError

        raise ConfigError(f"--port must be from 1 to 65535, got {port}")
    server, corpora = assemble(home, model, api_base, roots)
    try:
        if transport == "stdio":
            server.run("stdio")
        else:
            sys.stderr.write(f"peek mcp: streamable HTTP on http://{host}:{port}/mcp\n")
            server.run("streamable-http", host=host, port=port)
    finally:
        corpora.close()  # the last connection out checkpoints the WAL
