"""glob, find_symbol, TOOL_SPECS and call() of peek.sandbox, on real corpora."""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path

import pytest
from helpers import write_tree as write

from peek.sandbox import (
    TOOL_SPECS,
    FileTools,
    PathEscapeError,
    SandboxError,
    SymbolHit,
)

PY_SOURCE = '''import os


@decorator
class Session:
    """A session."""

    def send(
        self,
        request,
    ) -> None:
        return request

    async def close(self):
        pass


def send_all(items):
    for item in items:
        send(item)
'''

JS_SOURCE = """export function parseArgs(argv) {
  if (argv) {
    return argv;
  }
  return [];
}

export default class Router extends Base {
  route() {}
}

export const LIMIT: number = 10;
const handler = async (req) => {
  return req;
};
let send = 1;
"""

GO_SOURCE = """package server

type Server struct {
\tAddr string
}

type ID int

func NewServer(addr string) *Server {
\treturn &Server{Addr: addr}
}

func (s *Server) Send(msg string) error {
\treturn nil
}
"""


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    outside = write(tmp_path / "outside", {"evil.py": "def send():\n    pass\n"})
    root = write(
        tmp_path / "corpus",
        {
            ".gitignore": "dist/\n",
            "setup.py": "def setup():\n    pass\n",
            "src/http/session.py": PY_SOURCE,
            "src/http/__init__.py": "",
            "web/app.ts": JS_SOURCE,
            "web/util.js": "function helper() { return 1; }\n",
            "go/server.go": GO_SOURCE,
            "docs/guide.md": "def send(): not code, just markdown\n",
            "dist/bundle.js": "function parseArgs() {}\n",
            ".git/hooks/pre-commit.py": "def send():\n    pass\n",
        },
    )
    (root / "src_link").symlink_to(root / "src", target_is_directory=True)
    (root / "out_link").symlink_to(outside, target_is_directory=True)
    (root / "setup_link.py").symlink_to(root / "setup.py")
    (root / "evil_link.py").symlink_to(outside / "evil.py")
    os.mkfifo(root / "fifo.py")
    return root


@pytest.fixture
def tools(corpus: Path) -> FileTools:
    return FileTools(corpus)


# --- glob ------------------------------------------------------------------------------------


def test_glob_recursive(tools: FileTools) -> None:
    assert tools.glob("**/*.py").paths == (
        "setup.py",
        "setup_link.py",
        "src/http/__init__.py",
        "src/http/session.py",
    )


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("*.py", ("setup.py", "setup_link.py")),
        ("src/*/*.py", ("src/http/__init__.py", "src/http/session.py")),
        ("src/**", ("src/http/__init__.py", "src/http/session.py")),
        ("**/http/s*", ("src/http/session.py",)),
        ("web/*.{ts,js}", ("web/app.ts", "web/util.js")),
        ("**/[gw]*/*", ("go/server.go", "web/app.ts", "web/util.js")),
        ("go/server.g?", ("go/server.go",)),
        ("./docs/*.md", ("docs/guide.md",)),
        ("**/*.md", ("docs/guide.md",)),
        ("*", (".gitignore", "setup.py", "setup_link.py")),
        ("nothing/**", ()),
    ],
)
def test_glob_patterns(tools: FileTools, pattern: str, expected: tuple[str, ...]) -> None:
    result = tools.glob(pattern)
    assert result.paths == expected
    assert result.pattern == pattern and not result.truncated


def test_glob_skips_git_ignored_symlinked_dirs_and_special_files(tools: FileTools) -> None:
    paths = tools.glob("**").paths
    assert not any(p.startswith((".git/", "dist/", "src_link/", "out_link/")) for p in paths)
    assert "fifo.py" not in paths and "evil_link.py" not in paths
    assert "setup_link.py" in paths


def test_glob_is_capped(corpus: Path) -> None:
    result = FileTools(corpus, max_results=2).glob("**")
    assert len(result.paths) == 2 and result.truncated
    assert result.note is not None and "stopped after 2" in result.note


@pytest.mark.parametrize(
    ("pattern", "error"),
    [
        ("../outside/*", PathEscapeError),
        ("src/../../outside/*.py", PathEscapeError),
        ("/etc/*", SandboxError),
        ("", SandboxError),
        ("src/[ab", SandboxError),
    ],
)
def test_glob_refuses_bad_patterns(
    tools: FileTools, pattern: str, error: type[SandboxError]
) -> None:
    with pytest.raises(error):
        tools.glob(pattern)


# --- find_symbol -----------------------------------------------------------------------------


def spans(tools: FileTools, name: str) -> list[tuple[str, str, int, int]]:
    return [(h.path, h.kind, h.start_line, h.end_line) for h in tools.find_symbol(name).hits]


def test_find_python_definitions_with_spans(tools: FileTools) -> None:
    assert spans(tools, "Session") == [("src/http/session.py", "class", 5, 15)]
    assert spans(tools, "send") == [
        ("src/http/session.py", "function", 8, 12),
        ("web/app.ts", "variable", 16, 16),
    ]
    assert spans(tools, "close") == [("src/http/session.py", "function", 14, 15)]
    assert spans(tools, "send_all") == [("src/http/session.py", "function", 18, 20)]


def test_find_js_and_ts_definitions(tools: FileTools) -> None:
    assert spans(tools, "parseArgs") == [("web/app.ts", "function", 1, 6)]
    assert spans(tools, "Router") == [("web/app.ts", "class", 8, 10)]
    assert spans(tools, "LIMIT") == [("web/app.ts", "variable", 12, 12)]
    assert spans(tools, "handler") == [("web/app.ts", "variable", 13, 15)]
    assert spans(tools, "helper") == [("web/util.js", "function", 1, 1)]


def test_find_go_definitions(tools: FileTools) -> None:
    assert spans(tools, "Server") == [("go/server.go", "type", 3, 5)]
    assert spans(tools, "ID") == [("go/server.go", "type", 7, 7)]
    assert spans(tools, "NewServer") == [("go/server.go", "function", 9, 11)]
    assert spans(tools, "Send") == [("go/server.go", "method", 13, 15)]


def test_find_symbol_accepts_qualified_names(tools: FileTools) -> None:
    result = tools.find_symbol("Session.close")
    assert [h.start_line for h in result.hits] == [14] and result.source == "regex"


def test_find_symbol_reports_nothing_found(tools: FileTools) -> None:
    result = tools.find_symbol("does_not_exist")
    assert result.hits == () and not result.truncated
    assert result.note is not None and "grep" in result.note


@pytest.mark.parametrize("name", ["", "   ", "two words", "a(b)"])
def test_find_symbol_refuses_bad_names(tools: FileTools, name: str) -> None:
    with pytest.raises(SandboxError):
        tools.find_symbol(name)


def test_find_symbol_is_capped(tmp_path: Path) -> None:
    root = write(tmp_path, {f"m{n}.py": "def dup():\n    pass\n" for n in range(5)})
    result = FileTools(root, max_results=3).find_symbol("dup")
    assert [h.path for h in result.hits] == ["m0.py", "m1.py", "m2.py"]
    assert result.truncated


def test_find_symbol_delegates_to_symbol_lookup(corpus: Path) -> None:
    asked: list[str] = []

    def lookup(name: str) -> list[SymbolHit]:
        asked.append(name)
        return [
            SymbolHit("b.py", name, "function", 9, 12),
            SymbolHit("a.py", name, "class", 3, 30),
            SymbolHit("a.py", name, "function", 1, 2),
        ]

    result = FileTools(corpus, symbol_lookup=lookup, max_results=2).find_symbol(" Thing.run ")
    assert asked == ["Thing.run"]
    assert result.source == "index" and result.truncated
    assert [(h.path, h.start_line) for h in result.hits] == [("a.py", 1), ("a.py", 3)]
    with pytest.raises(SandboxError):
        FileTools(corpus, symbol_lookup=lookup).find_symbol("")


# --- TOOL_SPECS and call ---------------------------------------------------------------------


def test_tool_specs_are_plain_json_schema() -> None:
    assert [spec["name"] for spec in TOOL_SPECS] == [
        "list_dir",
        "read_file",
        "grep",
        "glob",
        "find_symbol",
    ]
    assert "$ref" not in json.dumps(TOOL_SPECS)
    for spec in TOOL_SPECS:
        assert spec["description"].endswith(".") and "call it" in spec["description"]
        params = spec["parameters"]
        assert params["type"] == "object" and params["additionalProperties"] is False
        assert set(params["required"]) <= set(params["properties"])
        for prop in params["properties"].values():
            assert prop["type"] in {"string", "integer", "boolean"} and prop["description"]


def test_tool_specs_match_method_signatures() -> None:
    for spec in TOOL_SPECS:
        method = getattr(FileTools, spec["name"])
        accepted = set(inspect.signature(method).parameters) - {"self"}
        assert set(spec["parameters"]["properties"]) == accepted


def test_call_matches_direct_calls(tools: FileTools) -> None:
    assert tools.call("list_dir", {}) == tools.list_dir().to_dict()
    assert tools.call("read_file", {"path": "setup.py", "end": 1}) == (
        tools.read_file("setup.py", end=1).to_dict()
    )
    assert tools.call("glob", {"pattern": "**/*.go"})["paths"] == ["go/server.go"]
    found = tools.call("grep", {"pattern": "setup", "glob": "*.py", "ignore_case": True})
    assert [(m["path"], m["line"]) for m in found["matches"]] == [("setup.py", 1)]
    symbol = tools.call("find_symbol", {"name": "NewServer"})
    assert symbol["hits"] == [
        {
            "path": "go/server.go",
            "name": "NewServer",
            "kind": "function",
            "start_line": 9,
            "end_line": 11,
        }
    ]
    assert json.loads(json.dumps(symbol)) == symbol


def test_call_coerces_gentle_mistakes(tools: FileTools) -> None:
    result = tools.call("read_file", {"path": "setup.py", "start": "2", "end": None})
    assert result["start"] == 2 and result["text"] == "   2|     pass"
    grep = tools.call("grep", {"pattern": "SETUP", "ignore_case": "true", "max_results": 1})
    assert len(grep["matches"]) == 1


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("delete_file", {"path": "x"}, "unknown tool 'delete_file'"),
        (["grep"], {}, "unknown tool"),
        ("read_file", {}, "needs the argument 'path'"),
        ("read_file", {"path": "setup.py", "mode": "w"}, "unknown argument 'mode'"),
        ("read_file", {"path": "setup.py", "start": 0}, "integer >= 1"),
        ("read_file", {"path": "setup.py", "start": True}, "integer >= 1"),
        ("read_file", {"path": "setup.py", "start": "two"}, "integer >= 1"),
        ("read_file", {"path": 7}, "must be a string"),
        ("grep", {"pattern": "x", "ignore_case": "yes"}, "true or false"),
        ("grep", ["pattern"], "must be an object"),
        ("read_file", {"path": "../outside/evil.py"}, "outside the corpus root"),
    ],
)
def test_call_refuses_bad_calls(tools: FileTools, name: str, args: object, message: str) -> None:
    with pytest.raises(SandboxError, match=message):
        tools.call(name, args)  # type: ignore[arg-type]
