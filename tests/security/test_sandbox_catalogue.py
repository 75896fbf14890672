"""Sandbox catalogue over the Python API: every escape, secret and special file is refused.

Each case names a tool call and the exact refusal it must get; every result (refusal or not)
is checked for leaked markers of secrets or outside content.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from security.world import World, build_world, leaked

from peek.sandbox import FileTools, PathEscapeError, SandboxError

CAP = 4096
OUTSIDE = "leads outside the corpus root"
EXCLUDED = "is excluded from this corpus"
BACKENDS = [pytest.param(True, id="ripgrep"), pytest.param(False, id="python")]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("world"), CAP)


@pytest.fixture(scope="module")
def tools(world: World) -> FileTools:
    return FileTools(world.root, max_file_bytes=CAP, use_ripgrep=False)


READ_REFUSALS = [
    ("../outside/secret.txt", OUTSIDE),
    ("/etc/passwd", OUTSIDE),
    ("/etc/shadow", OUTSIDE),
    ("/proc/self/environ", OUTSIDE),
    ("/dev/zero", OUTSIDE),
    ("out_link", OUTSIDE),
    ("outdir/secret.txt", OUTSIDE),
    ("etc_link", OUTSIDE),
    ("rel_escape", OUTSIDE),
    ("sub/deep_escape", OUTSIDE),
    ("sub/../../outside/secret.txt", OUTSIDE),
    ("./../outside/secret.txt", OUTSIDE),
    ("root_link/../outside/secret.txt", OUTSIDE),
    ("sub/up_link/../../outside/secret.txt", "not a folder"),
    ("loop1", "too many levels of symlinks"),
    (".env", EXCLUDED),
    (".env.local", EXCLUDED),
    ("sub/.env", EXCLUDED),
    ("env_link", EXCLUDED),
    (".git/config", EXCLUDED),
    (".git/HEAD", EXCLUDED),
    ("git_link", EXCLUDED),
    ("node_modules/lib/x.js", EXCLUDED),
    ("node_link", EXCLUDED),
    (".venv/lib/site.py", EXCLUDED),
    ("private/p.txt", EXCLUDED),
    ("sub/gen/g.py", EXCLUDED),
    ("id_rsa", EXCLUDED),
    ("server.pem", EXCLUDED),
    ("tls/site.key", EXCLUDED),
    (".netrc", EXCLUDED),
    ("credentials.json", EXCLUDED),
    (".aws/credentials", EXCLUDED),
    (".npmrc", EXCLUDED),
    ("deploy/.pypirc", EXCLUDED),
    ("infra/terraform.tfstate", EXCLUDED),
    ("pipe", "named pipe (FIFO)"),
    ("big.txt", f"over the {CAP}-byte read limit"),
    ("blob.dat", "looks binary"),
    ("a\0b", "contains a NUL byte"),
    ("missing.py", "no such file or directory"),
    ("dangling", "no such file or directory"),
    ("sub", "is a folder"),
]


@pytest.mark.parametrize(("path", "refusal"), READ_REFUSALS, ids=[c[0] for c in READ_REFUSALS])
def test_read_file_refuses(tools: FileTools, path: str, refusal: str) -> None:
    with pytest.raises(SandboxError) as err:
        tools.read_file(path)
    assert refusal in str(err.value)
    assert leaked(err.value) == []


@pytest.mark.parametrize("path", [p for p, r in READ_REFUSALS if r == OUTSIDE])
def test_escapes_are_path_escape_errors(tools: FileTools, path: str) -> None:
    with pytest.raises(PathEscapeError):
        tools.read_file(path)


LIST_REFUSALS = [
    ("..", OUTSIDE), ("/", OUTSIDE), ("/etc", OUTSIDE), ("outdir", OUTSIDE),
    (".git", EXCLUDED), ("node_modules", EXCLUDED), (".venv", EXCLUDED), ("private", EXCLUDED),
    (".aws", EXCLUDED), ("sub/gen", EXCLUDED), ("a.py", "is a file, not a folder"),
    ("pipe", "named pipe (FIFO)"),
]


@pytest.mark.parametrize(("path", "refusal"), LIST_REFUSALS, ids=[c[0] for c in LIST_REFUSALS])
def test_list_dir_refuses(tools: FileTools, path: str, refusal: str) -> None:
    with pytest.raises(SandboxError, match=refusal.replace("(", r"\(").replace(")", r"\)")):
        tools.list_dir(path)


def test_list_dir_hides_what_the_index_excludes(tools: FileTools) -> None:
    names = {e.name for e in tools.list_dir(".").entries}
    assert {"a.py", "sub", "docs", ".env.example", "id_rsa.pub", "out_link"} <= names
    assert not names & {".env", ".env.local", ".git", "node_modules", ".venv", "private",
                        "id_rsa", "server.pem", ".netrc", "credentials.json", ".aws", ".npmrc"}
    assert {e.name for e in tools.list_dir("sub").entries} >= {"b.py"}
    assert not {e.name for e in tools.list_dir("sub").entries} & {".env", "gen"}


ALLOWED_READS = [
    ("a.py", "visible"), ("inside_link", "visible"), ("sub/up_link", "visible"),
    ("abs_inside", "visible"), ("root_link/a.py", "visible"), (".env.example", "changeme"),
    ("id_rsa.pub", "public"), ("sub/../a.py", "visible"),
]


@pytest.mark.parametrize(("path", "text"), ALLOWED_READS, ids=[c[0] for c in ALLOWED_READS])
def test_reads_inside_the_root_still_work(tools: FileTools, path: str, text: str) -> None:
    assert text in tools.read_file(path).text


def test_absolute_path_inside_the_root_is_allowed(tools: FileTools, world: World) -> None:
    assert "visible" in tools.read_file(str(world.root / "a.py")).text


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("glob", [None, "*", "**/*", ".env", ".git/**", "node_modules/**",
                                  "**/.env", "*.pem", "private/**", ".venv/**", "**/*.json",
                                  "*.key", "**/*.tfstate"])
def test_grep_never_searches_excluded_files(world: World, backend: bool, glob: str | None) -> None:
    if backend and FileTools(world.root).ripgrep is None:
        pytest.skip("no rg")
    found = FileTools(world.root, max_file_bytes=CAP, use_ripgrep=backend).grep("TOKEN_", glob)
    assert found.matches == ()
    assert leaked(found.to_dict()) == []


@pytest.mark.parametrize("pattern", ["**/*", "*", ".*", "**/.env", ".git/*", "node_modules/**",
                                     "private/*", "**/*.key", "**/id_rsa", ".aws/*"])
def test_glob_never_lists_excluded_files(tools: FileTools, pattern: str) -> None:
    found = set(tools.glob(pattern).paths)
    assert not any(p.startswith((".git/", "node_modules/", ".venv/", "private/", ".aws/"))
                   for p in found)
    assert not found & {".env", ".env.local", "sub/.env", "id_rsa", "server.pem", ".netrc",
                        "credentials.json", "sub/gen/g.py", "out_link", "etc_link", "env_link"}


@pytest.mark.parametrize(("pattern", "refusal"), [
    ("../*", "uses '..'"), ("/etc/*", "is absolute"), ("sub/../../*", "uses '..'"),
    ("a\0b", "non-empty string"),
])
def test_glob_refuses_patterns_that_leave_the_root(tools: FileTools, pattern: str,
                                                  refusal: str) -> None:
    with pytest.raises(SandboxError, match=refusal):
        tools.glob(pattern)


@pytest.mark.parametrize("glob", ["../*", "sub/../../*", "!../*"])
def test_grep_refuses_globs_that_leave_the_root_as_glob_does(tools: FileTools, glob: str) -> None:
    with pytest.raises(SandboxError, match="uses '..'"):
        tools.grep("TOKEN_", glob)


def test_find_symbol_never_scans_excluded_files(tools: FileTools) -> None:
    assert tools.find_symbol("leaked_symbol").hits == ()
    assert [h.path for h in tools.find_symbol("helper").hits] == ["sub/b.py"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pattern", ["--files", "-e", "--pre=sh", "-f/etc/passwd", "--",
                                     "$(id)", "`id`"])
def test_grep_option_injection_is_a_pattern(world: World, backend: bool, pattern: str) -> None:
    if backend and FileTools(world.root).ripgrep is None:
        pytest.skip("no rg")
    try:
        found = FileTools(world.root, use_ripgrep=backend).grep(pattern)
    except SandboxError as err:
        assert "invalid regex" in str(err)
        return
    assert leaked(found.to_dict()) == []
    assert all(not m.path.startswith("/") for m in found.matches)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pattern", [r"(?=a)(a+)+$", r"(a+)+$", r"(a|aa)+$", r"(?<=a)(a*)*b$"])
def test_catastrophic_patterns_stop_at_the_time_limit(tmp_path: Path, backend: bool,
                                                      pattern: str) -> None:
    (tmp_path / "evil.txt").write_text("a" * 41 + "!\n")
    tools = FileTools(tmp_path, grep_timeout=1.0, use_ripgrep=backend)
    if backend and tools.ripgrep is None:
        pytest.skip("no rg")
    started = time.monotonic()
    found = tools.grep(pattern)
    assert time.monotonic() - started < 5
    assert found.matches == () or found.truncated


@pytest.mark.parametrize("bad", [
    ("read_file", {"path": 5}), ("read_file", {"path": "a.py", "start": 0}),
    ("read_file", {"path": "a.py", "start": -1}), ("read_file", {"path": "a.py", "end": "x"}),
    ("read_file", {"path": "a.py", "extra": 1}), ("grep", {"pattern": "("}),
    ("grep", {"pattern": ""}), ("grep", {"pattern": "a", "max_results": 0}),
    ("glob", {"pattern": ""}), ("find_symbol", {"name": " "}), ("nope", {}),
    ("list_dir", {"path": ["."]}),
])
def test_malformed_tool_calls_are_refused(tools: FileTools,
                                          bad: tuple[str, dict[str, object]]) -> None:
    name, args = bad
    with pytest.raises(SandboxError):
        tools.call(name, args)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("glob", ["*a*a*a*a*a*a*a*a*a*a*a*b", "**/*a*a*a*a*a*a*a*a*a*a*b"])
def test_catastrophic_globs_stop_at_the_time_limit(tmp_path: Path, glob: str) -> None:
    """Either the engine fails fast or the match times out and the glob is refused."""
    (tmp_path / ("ab" * 60 + "c")).write_text("x\n")
    (tmp_path / ("a" * 200)).write_text("x\n")
    tools = FileTools(tmp_path, use_ripgrep=False)
    started = time.monotonic()
    for call in (lambda: tools.glob(glob).paths, lambda: tools.grep("x", glob).matches):
        try:
            assert call() == ()
        except SandboxError as err:
            assert "too complex to match" in str(err)
    assert time.monotonic() - started < 5


def test_overlong_grep_pattern_is_refused(tools: FileTools) -> None:
    with pytest.raises(SandboxError, match="over 2000 characters"):
        tools.grep("a" * 2001)


def test_deeply_nested_folders_neither_crash_nor_hang(tmp_path: Path) -> None:
    from peek.retrieval.walk import MAX_DEPTH, walk_corpus

    deep = tmp_path / "root"
    path = deep
    for _ in range(MAX_DEPTH + 20):
        path = path / "d"
    path.mkdir(parents=True)
    (path / "bottom.py").write_text("x = 1\n")
    (deep / "top.py").write_text("y = 2\n")
    report = walk_corpus(deep.resolve(), 1 << 20)
    assert [f.path for f in report.files] == ["top.py"]
    assert report.unreadable and FileTools(deep).glob("**/*.py").paths == ("top.py",)


def test_root_swapped_for_a_symlink_after_start_is_refused(tmp_path: Path,
                                                           world: World) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.py").write_text("fine\n")
    tools = FileTools(root)
    root.rename(tmp_path / "moved")
    root.symlink_to(world.outside)
    with pytest.raises(SandboxError):
        tools.read_file("secret.txt")
    with pytest.raises(SandboxError):
        tools.list_dir(".")
    assert tools.glob("**/*").paths == ()
