"""`peek mcp` as the MCP Inspector CLI (npm `@modelcontextprotocol/inspector --cli`) sees it.

The Inspector is a client written against the TypeScript SDK, so this checks interoperability
beyond the Python SDK. It is installed into a temporary folder when node is available.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import MCP_TOOLS, SAMPLE

from peek.service import Peek

pytestmark = pytest.mark.slow  # long: run with -m slow (CI runs both)

PACKAGE = "@modelcontextprotocol/inspector"
INSTALL_TIMEOUT_S = 300
TOOLS = MCP_TOOLS

Indexed = tuple[Path, Path]  # (corpus, home)


@pytest.fixture(scope="module")
def inspector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding an npm install of the Inspector; skips when node or the install fails."""
    if not all(shutil.which(tool) for tool in ("node", "npm", "npx")):
        pytest.skip("node, npm or npx is not installed")
    prefix = tmp_path_factory.mktemp("inspector")
    try:
        done = subprocess.run(["npm", "install", "--prefix", str(prefix), PACKAGE],
                              capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm install {PACKAGE} took more than {INSTALL_TIMEOUT_S} s")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"npm install {PACKAGE} failed: {last}")
    return prefix


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(corpus, home): the sample corpus, indexed."""
    base = tmp_path_factory.mktemp("inspected")
    for rel, content in SAMPLE.items():
        (base / "corpus" / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / "corpus" / rel).write_text(content, encoding="utf-8")
    peek = Peek(base / "corpus", base / "home")
    peek.index()
    peek.close()
    return peek.root, base / "home"


def inspect(prefix: Path, home: Path, *method: str) -> dict[str, Any]:
    """Run the Inspector CLI against a stdio `peek mcp` and parse the JSON it prints."""
    server = [sys.executable, "-m", "peek.cli", "mcp", "--home", str(home), "--root",
              str(home.parent)]
    done = subprocess.run(["npx", "--prefix", str(prefix), PACKAGE, "--cli", *server, *method],
                          capture_output=True, text=True, timeout=120, cwd=prefix)
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def test_inspector_lists_the_tools_with_object_schemas(inspector: Path, corpus: Indexed) -> None:
    _root, home = corpus
    listed = inspect(inspector, home, "--method", "tools/list")
    tools = {t["name"]: t for t in listed["tools"]}
    assert set(tools) == TOOLS
    for name, tool in tools.items():
        assert tool["inputSchema"]["type"] == "object", name
        assert all("type" in p for p in tool["inputSchema"]["properties"].values()), name


def test_inspector_calls_peek_map(inspector: Path, corpus: Indexed) -> None:
    root, home = corpus
    called = inspect(inspector, home, "--method", "tools/call", "--tool-name", "peek_map",
                     "--tool-arg", f"corpus={root}")
    assert not called.get("isError")
    view = called["structuredContent"]
    peek = Peek(root, home)
    try:
        assert view["rendered"] == peek.map().text != ""
    finally:
        peek.close()
    assert view["corpus"] == str(root) and view["tokens"] <= view["budget_tokens"]
    assert json.loads(called["content"][0]["text"]) == view


def test_inspector_sees_errors_as_tool_errors(inspector: Path, corpus: Indexed) -> None:
    root, home = corpus
    called = inspect(inspector, home, "--method", "tools/call", "--tool-name", "peek_read",
                     "--tool-arg", f"corpus={root}", "--tool-arg", "path=../escape.txt")
    assert called["isError"] is True
    assert "leads outside the corpus root" in called["content"][0]["text"]
