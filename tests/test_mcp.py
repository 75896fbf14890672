"""`peek mcp` driven by the official MCP Python client over stdio and streamable HTTP.

Each transport gets one real server process; a fixture runs one scripted session against it and
keeps every answer, and the tests below check those answers. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from helpers import MCP_TOOLS, SAMPLE
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, Tool

from peek.service import Peek

TOOLS = MCP_TOOLS


def server_args(home: Path, *extra: str) -> list[str]:
    """`python -m peek.cli mcp ...` for this test's home; its corpora sit beside the home."""
    return ["-m", "peek.cli", "mcp", "--home", str(home), "--root", str(home.parent), *extra]


@asynccontextmanager
async def stdio_session(home: Path, *extra: str) -> AsyncIterator[ClientSession]:
    """An initialized client session with a freshly spawned stdio server."""
    params = StdioServerParameters(command=sys.executable, args=server_args(home, *extra))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def http_session(url: str) -> AsyncIterator[ClientSession]:
    """An initialized client session with a running streamable HTTP server."""
    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(proc: subprocess.Popen[bytes], port: int, timeout: float = 60) -> None:
    """Block until the server accepts connections; fail if it exits or never listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"peek mcp exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"peek mcp did not listen on port {port} within {timeout} s")


@contextmanager
def http_server(home: Path, log: Path) -> Iterator[str]:
    """`peek mcp --transport http` on a free loopback port; stopped however the test ends."""
    port = free_port()
    args = [sys.executable, *server_args(home, "--transport", "http", "--port", str(port))]
    with log.open("wb") as err:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_listening(proc, port)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Exchange:
    """Everything one scripted client session saw."""

    corpus: Path
    unindexed: Path
    home: Path
    tools: dict[str, Tool] = field(default_factory=dict)
    calls: dict[str, CallToolResult] = field(default_factory=dict)
    templates: list[str] = field(default_factory=list)
    resource: str = ""
    map_before_resource: str = ""
    resource_error: str = ""

    def data(self, label: str) -> dict[str, Any]:
        """The structured result of a successful call."""
        result = self.calls[label]
        assert not result.is_error, result.content
        assert result.structured_content is not None
        return dict(result.structured_content)

    def error(self, label: str) -> str:
        """The text of a call that must have failed."""
        result = self.calls[label]
        assert result.is_error, result.structured_content
        return text_of(result)


def text_of(result: CallToolResult) -> str:
    """The first text block of a result."""
    block = result.content[0]
    assert block.type == "text"
    return block.text


TRAJECTORY = {
    "question": "How do redirects work?",
    "steps": [{"tool": "grep", "args": {"pattern": "redirect"}, "paths": ["docs/guide.md"]},
              {"tool": "read_file", "args": {"path": "src/http/session.py"},
               "paths": ["src/http/session.py"]}],
    "answer": "Session.resolve_redirects follows them.",
    "citations": [{"path": "src/http/session.py", "start_line": 9, "end_line": 13}],
}


HOST_REPORT = {"question": "Redirect loops never stop", "session": "host-task-1",
               "files_edited": ["src/http/session.py"], "success": True}


def session_script(ex: Exchange) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, tool, arguments), in call order; `corpus` is added to every call that lacks it."""
    missing = str(ex.corpus.parent / "no-such-folder")
    return [
        ("status_before", "peek_status", {}),
        ("map", "peek_map", {}),
        ("search", "peek_search", {"query": "resolve_redirects", "k": 3}),
        ("read", "peek_read", {"path": "src/http/session.py", "start_line": 9, "end_line": 13}),
        ("read_whole", "peek_read", {"path": "README.txt"}),
        ("record", "peek_record", {
            "question": "Where are redirects followed?",
            "files_read": ["docs/guide.md", str(ex.corpus / "src/http/session.py")],
            "files_edited": ["src/http/session.py"], "success": True}),
        ("record_trajectory", "peek_record", {"question": "ignored", "trajectory": TRAJECTORY}),
        ("record_task", "peek_record", HOST_REPORT),
        ("record_task_again", "peek_record", HOST_REPORT),
        ("map_after", "peek_map", {"budget": 1500}),
        ("memory", "peek_memory_search", {"query": "redirects followed session", "k": 3}),
        ("err_escape", "peek_read", {"path": "../outside.txt"}),
        ("err_missing_file", "peek_read", {"path": "src/nope.py"}),
        ("err_no_folder", "peek_map", {"corpus": missing}),
        ("err_not_indexed", "peek_search", {"corpus": str(ex.unindexed), "query": "x"}),
        ("err_empty_query", "peek_search", {"query": "   "}),
        ("err_bad_trajectory", "peek_record", {"question": "q", "trajectory": {"steps": 3}}),
    ]


async def run_script(ex: Exchange, session: ClientSession) -> None:
    """List, call every tool, read the map resource, then edit a file and re-index."""
    ex.tools = {t.name: t for t in (await session.list_tools()).tools}
    for label, tool, args in session_script(ex):
        ex.calls[label] = await session.call_tool(tool, {"corpus": str(ex.corpus), **args})
    ex.templates = [t.uri_template for t in
                    (await session.list_resource_templates()).resource_templates]
    ex.map_before_resource = ex.data("map_after")["rendered"]
    uri = f"peek://{quote(str(ex.corpus), safe='')}/map"
    contents = (await session.read_resource(uri)).contents[0]
    ex.resource = getattr(contents, "text", "")
    try:
        await session.read_resource(f"peek://{quote(str(ex.unindexed), safe='')}/map")
    except MCPError as exc:
        ex.resource_error = exc.error.message
    with (ex.corpus / "src/http/adapters.py").open("a") as fh:
        fh.write("\n\ndef getTimeout():\n    return 30\n")
    ex.calls["status_dirty"] = await session.call_tool("peek_status", {"corpus": str(ex.corpus)})
    ex.calls["index"] = await session.call_tool("peek_index", {"corpus": str(ex.corpus)})
    ex.calls["status_clean"] = await session.call_tool("peek_status", {"corpus": str(ex.corpus)})


async def run_script_in(ex: Exchange, opened: AbstractAsyncContextManager[ClientSession]) -> None:
    """Run the script inside a freshly opened session."""
    async with opened as session:
        await run_script(ex, session)


def write_corpus(root: Path, files: dict[str, str]) -> Path:
    """A small real corpus on disk."""
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content, encoding="utf-8")
    return root


@pytest.fixture(scope="module", params=["stdio", "http"])
def exchange(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Exchange:
    """One scripted session per transport against an indexed copy of the sample corpus."""
    base = tmp_path_factory.mktemp(f"mcp-{request.param}")
    corpus = write_corpus(base / "corpus", SAMPLE)
    unindexed = write_corpus(base / "unindexed", {"a.txt": "not indexed\n"})
    ex = Exchange(corpus.resolve(), unindexed.resolve(), base / "home")
    peek = Peek(corpus, ex.home)
    peek.index()
    peek.close()
    if request.param == "stdio":
        asyncio.run(run_script_in(ex, stdio_session(ex.home)))
    else:
        with http_server(ex.home, base / "server.log") as url:
            asyncio.run(run_script_in(ex, http_session(url)))
    return ex


def walk_schema(node: Any) -> Iterator[dict[str, Any]]:
    """Every object inside a JSON Schema, the root included."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk_schema(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk_schema(item)


def test_lists_exactly_the_tools_and_no_ask_without_a_model(exchange: Exchange) -> None:
    assert set(exchange.tools) == TOOLS


def test_every_input_schema_is_plain_json_schema(exchange: Exchange) -> None:
    for name, tool in exchange.tools.items():
        schema = tool.input_schema
        assert schema["type"] == "object", name
        assert "corpus" in schema["required"], name
        for prop, spec in schema["properties"].items():
            assert isinstance(spec.get("type"), str), (name, prop, spec)
        nodes = list(walk_schema(schema))
        assert not any("$ref" in n or "anyOf" in n or n.get("default", 0) is None for n in nodes)
        assert "$ref" not in json.dumps(schema)


def test_contract_argument_names(exchange: Exchange) -> None:
    props = {name: set(t.input_schema["properties"]) for name, t in exchange.tools.items()}
    assert props["peek_map"] == {"corpus", "budget", "evolve_steps"}
    assert props["peek_search"] == {"corpus", "query", "k"}
    assert props["peek_read"] == {"corpus", "path", "start_line", "end_line"}
    assert props["peek_record"] == {"corpus", "question", "files_read", "files_edited",
                                    "success", "trajectory", "session", "summary", "correct",
                                    "retract"}
    assert props["peek_status"] == props["peek_index"] == {"corpus"}
    assert exchange.tools["peek_record"].input_schema["required"] == ["corpus", "question"]


def test_a_report_with_a_session_id_is_applied_once(exchange: Exchange) -> None:
    first, again = exchange.data("record_task"), exchange.data("record_task_again")
    assert first["session"] == again["session"] == "host-task-1"
    assert first["status"] == "applied" and again["status"] == "unchanged"
    assert again["version"] == first["version"]


def test_descriptions_say_when_to_call(exchange: Exchange) -> None:
    assert "Call peek_map first" in (exchange.tools["peek_map"].description or "")
    assert "Call peek_record last" in (exchange.tools["peek_record"].description or "")
    for name, tool in exchange.tools.items():
        assert (tool.description or "").startswith(f"Call {name}"), name


def test_map_is_rendered_and_has_the_map_json_fields(exchange: Exchange) -> None:
    view = exchange.data("map")
    assert set(view) == {"rendered", "corpus", "version", "budget_tokens", "tokens", "entries"}
    assert view["corpus"] == str(exchange.corpus)
    assert view["tokens"] <= view["budget_tokens"]
    for entry in view["entries"]:
        assert f"[{entry['id']}]" in view["rendered"]


def test_map_matches_the_sdk_view(exchange: Exchange) -> None:
    peek = Peek(exchange.corpus, exchange.home)
    try:
        view = peek.map()
    finally:
        peek.close()
    after = exchange.data("map_after")
    assert after["budget_tokens"] == 1500  # the budget of that view only: a read never writes
    assert view.budget_tokens == 1024
    assert after["rendered"] == exchange.map_before_resource


def test_text_content_is_the_same_json(exchange: Exchange) -> None:
    result = exchange.calls["search"]
    assert json.loads(text_of(result)) == result.structured_content


def test_search_returns_cited_hits(exchange: Exchange) -> None:
    hits = exchange.data("search")["results"]
    assert 1 <= len(hits) <= 3
    assert hits[0]["path"] == "src/http/session.py"
    assert hits[0]["start_line"] <= 9 <= hits[0]["end_line"]
    assert set(hits[0]) == {"path", "start_line", "end_line", "symbol", "score"}


def test_read_returns_the_numbered_slice(exchange: Exchange) -> None:
    part = exchange.data("read")
    assert (part["path"], part["start"], part["end"]) == ("src/http/session.py", 9, 13)
    assert "def resolve_redirects(self, resp):" in part["text"]
    assert part["text"].splitlines()[0].lstrip().startswith("9|")
    whole = exchange.data("read_whole")
    assert whole["total_lines"] == 1 and "tiny sample corpus" in whole["text"]


def test_record_teaches_the_map_and_lands_in_history(exchange: Exchange) -> None:
    first, second = exchange.data("record"), exchange.data("record_trajectory")
    assert first["status"] == second["status"] == "applied"
    assert second["version"] > first["version"] > exchange.data("map")["version"]
    assert "evidence: src/http/session.py" in first["diagnosis"]
    assert "succeeded" in first["diagnosis"]
    peek = Peek(exchange.corpus, exchange.home)
    try:
        sessions = {v.session for v in peek.map_history(limit=None)}
    finally:
        peek.close()
    assert {first["session"], second["session"]} <= sessions


def test_recorded_sessions_are_recalled_from_memory(exchange: Exchange) -> None:
    found = exchange.data("memory")
    assert set(found) == {"results", "tokens"} and 0 < found["tokens"] <= 2000
    assert found["results"], found
    assert all(set(r) == {"turn_ids", "text", "episode", "score"} for r in found["results"])
    assert any("session.py" in r["text"] for r in found["results"])


def test_status_then_reindex_after_a_change(exchange: Exchange) -> None:
    before = exchange.data("status_before")
    assert before["indexed"] and not before["dirty"] and before["files"] == len(SAMPLE)
    assert exchange.data("status_dirty")["changed"] == ["src/http/adapters.py"]
    stats = exchange.data("index")
    assert (stats["changed"], stats["added"], stats["files"]) == (1, 0, len(SAMPLE))
    assert not exchange.data("status_clean")["dirty"]


def test_errors_are_tool_errors_with_one_line_messages(exchange: Exchange) -> None:
    expected = {
        "err_escape": "leads outside the corpus root",
        "err_missing_file": "src/nope.py",
        "err_no_folder": "no such folder",
        "err_not_indexed": "is not indexed yet (call peek_index with this corpus first)",
        "err_empty_query": "the query is empty",
        "err_bad_trajectory": "does not match the trajectory contract",
    }
    for label, fragment in expected.items():
        message = exchange.error(label)
        assert fragment in message, (label, message)
        assert "\n" not in message and "Traceback" not in message, (label, message)


def test_map_resource_returns_the_rendered_map(exchange: Exchange) -> None:
    assert exchange.templates == ["peek://{corpus}/map"]
    assert exchange.resource == exchange.map_before_resource != ""
    assert "is not indexed yet" in exchange.resource_error


def test_ask_is_offered_only_with_a_model(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", SAMPLE)
    home = tmp_path / "home"
    Peek(corpus, home).index()

    async def script() -> tuple[set[str], CallToolResult]:
        async with stdio_session(home, "--model", "offline") as session:
            names = {t.name for t in (await session.list_tools()).tools}
            args = {"corpus": str(corpus), "question": "Where are redirects followed?",
                    "max_steps": 4}
            return names, await session.call_tool("peek_ask", args)

    names, result = asyncio.run(script())
    assert names == TOOLS | {"peek_ask"}
    assert not result.is_error, result.content
    answer = result.structured_content or {}
    assert answer["model"] == "offline" and answer["steps"] <= 4
    assert any(c["path"] == "src/http/session.py" for c in answer["citations"])


def test_start_imports_neither_litellm_nor_langgraph() -> None:
    probe = ("import sys; from peek.cli.mcp_server import build_server; "
             "build_server(None, 'openai/gpt-4o-mini', None); "
             "print(sorted(m for m in ('litellm', 'langgraph') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_every_tool_and_argument_is_in_the_readme(tmp_path: Path) -> None:
    """Like the CLI's docs test: each tool a real client lists has a README row naming its
    arguments, so a new tool or argument fails here until the tools table documents it."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(peek_\w+)` \|.*$", readme, re.M)}

    async def script() -> list[Tool]:
        async with stdio_session(tmp_path / "home", "--model", "offline") as session:
            return list((await session.list_tools()).tools)

    missing = []
    for tool in asyncio.run(script()):
        row = rows.get(tool.name, "")
        names = tool.input_schema.get("properties", {})
        missing += [f"{tool.name}({a})" for a in names if not re.search(rf"`{a}\??`", row)]
        missing += [] if row else [tool.name]
    assert not missing, f"README tools table lacks: {missing}"
