"""Sandbox and bad-input catalogue over a real MCP client (stdio, official SDK).

One server runs with `--root ALLOWED`; a second one has no --root and gets its roots from the
client (MCP roots). Every call's answer is kept once, and each case checks its exact refusal
and that no marker of a secret or of outside content came back.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.types import ListRootsResult, Root
from security.world import SECRETS, World, build_world, leaked

from peek.service import Peek

OUT_OF_ROOTS = "is outside the allowed corpus roots"
NOT_INDEXED = "is not indexed yet"
EXCLUDED = "is excluded from this corpus"
ESCAPE = "leads outside the corpus root"


class Place:
    """Folders of the MCP world: the allowed root, the indexed world, and folders around it."""

    def __init__(self, base: Path) -> None:
        self.allowed = (base / "allowed").resolve()
        self.allowed.mkdir()
        self.world: World = build_world(self.allowed, outside_base=base)
        self.unindexed = self.allowed / "unindexed"
        self.unindexed.mkdir()
        (self.unindexed / "u.py").write_text("TOKEN_UNINDEXED = 1\n")
        self.other = (base / "other").resolve()
        self.other.mkdir()
        (self.other / "o.py").write_text("TOKEN_OTHER = 1\n")
        (self.allowed / "etc_alias").symlink_to("/etc")
        (self.allowed / "other_alias").symlink_to(self.other)
        self.home = base / "home"


def corpus_cases(p: Place) -> dict[str, tuple[str, dict[str, Any], str]]:
    """case id -> (tool, arguments, exact refusal); an empty refusal means it must succeed."""
    root = str(p.world.root)
    reads = {
        ".env": EXCLUDED, ".git/config": EXCLUDED, "env_link": EXCLUDED, "git_link": EXCLUDED,
        "node_modules/lib/x.js": EXCLUDED, "private/p.txt": EXCLUDED, "id_rsa": EXCLUDED,
        ".aws/credentials": EXCLUDED, "credentials.json": EXCLUDED, "sub/gen/g.py": EXCLUDED,
        "../outside/secret.txt": ESCAPE, "/etc/shadow": ESCAPE, "/etc/passwd": ESCAPE,
        "out_link": ESCAPE, "etc_link": ESCAPE, "rel_escape": ESCAPE, "outdir/secret.txt": ESCAPE,
        "loop1": "too many levels of symlinks", "pipe": "named pipe (FIFO)",
        "a\u0000b": "contains a NUL byte", "blob.dat": "looks binary", "a.py": "",
    }
    cases = {f"read:{k}": ("peek_read", {"corpus": root, "path": k}, v) for k, v in reads.items()}
    elsewhere = {
        "etc": ("/etc", OUT_OF_ROOTS), "slash": ("/", OUT_OF_ROOTS),
        "parent": (str(p.world.root / ".."), NOT_INDEXED),
        "etc_alias": (str(p.allowed / "etc_alias"), OUT_OF_ROOTS),
        "other": (str(p.other), OUT_OF_ROOTS), "other_alias": (str(p.allowed / "other_alias"),
                                                               OUT_OF_ROOTS),
        "unindexed": (str(p.unindexed), NOT_INDEXED), "relative": ("corpus", "not an absolute"),
        "empty": ("  ", "corpus is empty"), "nul": ("/tmp/\u0000x", "NUL byte"),
        "outside_dir": (str(p.world.outside), OUT_OF_ROOTS),
    }
    for name, (corpus, refusal) in elsewhere.items():
        cases[f"read@{name}"] = ("peek_read", {"corpus": corpus, "path": "o.py"}, refusal)
        cases[f"search@{name}"] = ("peek_search", {"corpus": corpus, "query": "TOKEN"}, refusal)
        cases[f"map@{name}"] = ("peek_map", {"corpus": corpus}, refusal)
    for name in ("etc", "slash", "etc_alias", "other", "outside_dir"):
        corpus = elsewhere[name][0]
        cases[f"ask@{name}"] = ("peek_ask", {"corpus": corpus, "question": "q"}, OUT_OF_ROOTS)
        cases[f"index@{name}"] = ("peek_index", {"corpus": corpus}, OUT_OF_ROOTS)
        cases[f"status@{name}"] = ("peek_status", {"corpus": corpus}, OUT_OF_ROOTS)
        cases[f"record@{name}"] = ("peek_record", {"corpus": corpus, "question": "q"},
                                   OUT_OF_ROOTS)
        cases[f"memory@{name}"] = ("peek_memory_search", {"corpus": corpus, "query": "q"},
                                   OUT_OF_ROOTS)
    cases["search:secrets"] = ("peek_search", {"corpus": root, "query": "TOKEN API_KEY"}, "")
    cases["status:indexed"] = ("peek_status", {"corpus": root}, "")
    return cases


BAD_INPUTS = {
    "search:k0": ("peek_search", {"query": "x", "k": 0}, "k must be a whole number from 1"),
    "search:k-1": ("peek_search", {"query": "x", "k": -1}, "k must be a whole number from 1"),
    "search:k-huge": ("peek_search", {"query": "x", "k": 10**20},
                      "k must be a whole number from 1"),
    "search:empty": ("peek_search", {"query": " "}, "the query is empty"),
    "memory:k0": ("peek_memory_search", {"query": "x", "k": 0},
                  "k must be a whole number from 1"),
    "memory:budget-5": ("peek_memory_search", {"query": "x", "budget": -5},
                        "budget must be a whole number from 1"),
    "memory:budget-huge": ("peek_memory_search", {"query": "x", "budget": 10**20},
                           "budget must be a whole number from 1"),
    "map:budget0": ("peek_map", {"budget": 0}, "budget must be a whole number from 1"),
    "map:budget-huge": ("peek_map", {"budget": 10**20}, "budget must be a whole number from 1"),
    "read:start0": ("peek_read", {"path": "a.py", "start_line": 0}, "start must be a line"),
    "read:end<start": ("peek_read", {"path": "a.py", "start_line": 2, "end_line": 1},
                       "end 1 is before start 2"),
    "read:past-end": ("peek_read", {"path": "a.py", "start_line": 99}, "is past the end"),
    "record:bad-traj": ("peek_record", {"question": "q", "trajectory": {"steps": "x"}}, "steps"),
    "ask:steps-neg": ("peek_ask", {"question": "q", "max_steps": -3},
                      "max_steps must be a whole number from 1 to 1000, got -3"),
    "ask:steps-0": ("peek_ask", {"question": "q", "max_steps": 0},
                    "max_steps must be a whole number from 1 to 1000, got 0"),
    "ask:steps-huge": ("peek_ask", {"question": "q", "max_steps": 10**20},
                       "max_steps must be a whole number from 1 to 1000"),
    "ask:empty": ("peek_ask", {"question": "  "}, "the question is empty"),
}


async def run_all(p: Place, cases: dict[str, tuple[str, dict[str, Any], str]],
                  extra: list[str], roots: list[Path] | None) -> dict[str, tuple[bool, str]]:
    args = ["-m", "peek.cli", "mcp", "--home", str(p.home), *extra]
    env = {k: v for k, v in os.environ.items() if k != "PEEK_ROOTS"}
    params = StdioServerParameters(command=sys.executable, args=args, env=env)
    callback = None
    if roots is not None:
        async def callback(_ctx: Any) -> ListRootsResult:
            return ListRootsResult(roots=[Root(uri=r.as_uri()) for r in roots])  # type: ignore[arg-type]
    out: dict[str, tuple[bool, str]] = {}
    async with stdio_client(params) as (read, write), ClientSession(
            read, write, list_roots_callback=callback) as session:
        await session.initialize()
        for name, (tool, arguments, _) in cases.items():
            result = await session.call_tool(tool, arguments)
            text = "".join(getattr(c, "text", "") for c in result.content)
            out[name] = (bool(result.is_error), text)
    return out


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Place:
    p = Place(tmp_path_factory.mktemp("mcpworld"))
    with _closing(Peek(p.world.root, p.home)) as peek:
        peek.index()
    with _closing(Peek(p.other, p.home)) as other:
        other.index()
    return p


class _closing:
    def __init__(self, peek: Peek) -> None:
        self.peek = peek

    def __enter__(self) -> Peek:
        return self.peek

    def __exit__(self, *_: object) -> None:
        self.peek.close()


def all_cases(p: Place) -> dict[str, tuple[str, dict[str, Any], str]]:
    root = str(p.world.root)
    bad = {k: (t, {"corpus": root, **a}, r) for k, (t, a, r) in BAD_INPUTS.items()}
    return {**corpus_cases(p), **bad}


@pytest.fixture(scope="module")
def answers(place: Place) -> dict[str, tuple[bool, str]]:
    extra = ["--root", str(place.allowed), "--model", "offline"]
    return asyncio.run(run_all(place, all_cases(place), extra, None))


@pytest.fixture(scope="module")
def host_answers(place: Place) -> dict[str, tuple[bool, str]]:
    """No --root: the host declares the world's folder as its only MCP root."""
    root = str(place.world.root)
    cases = {
        "read:a.py": ("peek_read", {"corpus": root, "path": "a.py"}, ""),
        "read:.env": ("peek_read", {"corpus": root, "path": ".env"}, EXCLUDED),
        "read@other": ("peek_read", {"corpus": str(place.other), "path": "o.py"}, OUT_OF_ROOTS),
        "read@allowed-parent": ("peek_read", {"corpus": str(place.allowed), "path": "x"},
                                OUT_OF_ROOTS),
        "index@etc": ("peek_index", {"corpus": "/etc"}, OUT_OF_ROOTS),
    }
    return asyncio.run(run_all(place, cases, [], [place.world.root]))


@pytest.fixture(scope="module")
def rootless_answers(place: Place) -> dict[str, tuple[bool, str]]:
    """No --root and no MCP roots: nothing is allowed."""
    cases = {"read:a.py": ("peek_read", {"corpus": str(place.world.root), "path": "a.py"},
                           "no corpus roots are allowed")}
    return asyncio.run(run_all(place, cases, [], None))


def _ids() -> list[str]:
    fake = Place.__new__(Place)
    fake.allowed = Path("/a")
    fake.world = World(Path("/a/corpus"), Path("/o"), Path("/o/s"))
    fake.unindexed, fake.other = Path("/a/u"), Path("/other")
    return list(all_cases(fake))


@pytest.mark.parametrize("case", _ids())
def test_mcp_case(place: Place, answers: dict[str, tuple[bool, str]], case: str) -> None:
    _, _, refusal = all_cases(place)[case]
    is_error, text = answers[case]
    assert leaked(text) == [], text
    if refusal:
        assert is_error, text
        assert refusal in text, text
        assert "unexpected error" not in text
    else:
        assert not is_error, text


@pytest.mark.parametrize("case", ["read:a.py", "read:.env", "read@other", "read@allowed-parent",
                                  "index@etc"])
def test_mcp_roots_declared_by_the_host(host_answers: dict[str, tuple[bool, str]],
                                        case: str) -> None:
    expected = {"read:a.py": "", "read:.env": EXCLUDED}.get(case, OUT_OF_ROOTS)
    is_error, text = host_answers[case]
    assert leaked(text) == []
    assert (is_error, expected in text) == (bool(expected), True), text


def test_without_any_root_nothing_is_served(rootless_answers: dict[str, tuple[bool, str]]) -> None:
    is_error, text = rootless_answers["read:a.py"]
    assert is_error and "no corpus roots are allowed" in text


def test_search_results_hold_no_secret(answers: dict[str, tuple[bool, str]]) -> None:
    is_error, text = answers["search:secrets"]
    assert not is_error
    paths = [r["path"] for r in json.loads(text)["results"]]
    assert paths and not set(paths) & set(SECRETS)
