"""grep of peek.sandbox: ripgrep and the pure-Python fallback, run on the same real corpus."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import write_tree as write

from peek.sandbox import FileTools, GrepResult, SandboxError
from peek.sandbox.grep import LINE_CHARS, find_ripgrep

RG = find_ripgrep()
BACKENDS = [
    pytest.param(True, id="ripgrep", marks=pytest.mark.skipif(RG is None, reason="no rg")),
    pytest.param(False, id="python"),
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Ignored, hidden, binary, oversized, symlinked and special files around a few matches."""
    outside = write(tmp_path / "outside", {"secret.py": "needle outside\n"})
    root = write(
        tmp_path / "corpus",
        {
            ".gitignore": "build/\n*.log\n!keep.log\n",
            "src/app.py": "import os\n\ndef main():\n    return 'needle'\n",
            "src/util/helpers.py": "# Needle in a comment\nNEEDLE = 1\nneedle_two = 2\n",
            "src/util/.gitignore": "generated.py\n",
            "src/util/generated.py": "needle generated\n",
            "lib/widget.js": "export function widget() { return 'needle'; }\n",
            "a.txt": "needle in a.txt\n",
            "a/b.txt": "needle in a/b.txt\n",
            "a-c.txt": "needle in a-c.txt\n",
            "build/out.py": "needle in build\n",
            "debug.log": "needle in log\n",
            "keep.log": "needle kept\n",
            ".git/config": "needle in git\n",
            ".hidden/h.py": "needle hidden\n",
            "bin.dat": b"needle\x00binary\n",
            "huge.txt": "needle\n" + "x" * 5000,
            "bad.txt": b"needle \xff\xfe bytes\n",
            "crlf.txt": "needle\r\nnot needle$\r\n",
            "bom.txt": b"\xef\xbb\xbfneedle first\n",
            "-dash.txt": "-needle with dash\n",
        },
    )
    (root / "link_in.py").symlink_to(root / "src" / "app.py")
    (root / "link_out.py").symlink_to(outside / "secret.py")
    (root / "linkdir_out").symlink_to(outside, target_is_directory=True)
    os.mkfifo(root / "pipe.txt")
    return root


def tools_for(root: Path, use_ripgrep: bool, **limits: int) -> FileTools:
    return FileTools(root, use_ripgrep=use_ripgrep, max_file_bytes=4096, **limits)


def located(result: GrepResult) -> list[tuple[str, int]]:
    return [(match.path, match.line) for match in result.matches]


EXPECTED = [
    ("-dash.txt", 1),
    (".hidden/h.py", 1),
    ("a/b.txt", 1),
    ("a-c.txt", 1),
    ("a.txt", 1),
    ("bad.txt", 1),
    ("bom.txt", 1),
    ("crlf.txt", 1),
    ("crlf.txt", 2),
    ("keep.log", 1),
    ("lib/widget.js", 1),
    ("src/app.py", 4),
    ("src/util/helpers.py", 3),
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("use_ripgrep", BACKENDS)
def test_grep_finds_exactly_the_searchable_matches(corpus: Path, use_ripgrep: bool) -> None:
    result = tools_for(corpus, use_ripgrep).grep("needle")
    assert result.backend == ("ripgrep" if use_ripgrep else "python")
    assert located(result) == EXPECTED
    assert not result.truncated and result.note is None


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
def test_grep_match_fields(corpus: Path, use_ripgrep: bool) -> None:
    matches = {m.path: m for m in tools_for(corpus, use_ripgrep).grep("needle").matches}
    assert matches["src/app.py"].text == "    return 'needle'"
    assert matches["src/app.py"].column == 13
    assert matches["bom.txt"].text == "needle first"
    assert matches["bad.txt"].text == "needle \ufffd\ufffd bytes"
    assert matches["-dash.txt"].column == 2


PARITY_CASES = [
    ("needle", None, False),
    ("NEEDLE", None, True),
    ("^needle$", None, False),
    (r"\bneedle_\w+", None, False),
    ("needle", "*.py", False),
    ("needle", "src/**", False),
    ("needle", "src/*.py", False),
    ("needle", "**/util/*", False),
    ("needle", "!*.txt", False),
    ("needle", "*.{py,js}", False),
    ("needle", "a", False),
    ("needle", "!a", False),
    ("needle", "/a.txt", False),
    ("needle", "[ab]*.txt", False),
    ("needle", "?.txt", False),
    ("-needle", None, False),
    (r"not needle\$", None, False),
    ("(?<=return ')needle", None, False),
]


@pytest.mark.timeout(30)
@pytest.mark.skipif(RG is None, reason="no rg")
@pytest.mark.parametrize(("pattern", "glob", "ignore_case"), PARITY_CASES)
def test_backends_agree(corpus: Path, pattern: str, glob: str | None, ignore_case: bool) -> None:
    fast = tools_for(corpus, True).grep(pattern, glob, ignore_case=ignore_case)
    slow = tools_for(corpus, False).grep(pattern, glob, ignore_case=ignore_case)
    assert fast.to_dict()["matches"] == slow.to_dict()["matches"]
    assert fast.truncated == slow.truncated


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
def test_grep_glob_filters(corpus: Path, use_ripgrep: bool) -> None:
    tools = tools_for(corpus, use_ripgrep)
    assert located(tools.grep("needle", "src/*.py")) == [("src/app.py", 4)]
    assert located(tools.grep("needle", "!*.txt")) == [
        (".hidden/h.py", 1),
        ("keep.log", 1),
        ("lib/widget.js", 1),
        ("src/app.py", 4),
        ("src/util/helpers.py", 3),
    ]
    assert located(tools.grep("needle", "   ")) == EXPECTED


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
def test_grep_glob_never_reaches_ignored_files(corpus: Path, use_ripgrep: bool) -> None:
    """The glob only narrows the corpus's files: what the index excludes is never searched."""
    assert located(tools_for(corpus, use_ripgrep).grep("needle", "*.py")) == [
        (".hidden/h.py", 1),
        ("src/app.py", 4),
        ("src/util/helpers.py", 3),
    ]
    assert located(tools_for(corpus, use_ripgrep).grep("needle", "*.log")) == [("keep.log", 1)]


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
def test_grep_ignore_case(corpus: Path, use_ripgrep: bool) -> None:
    tools = tools_for(corpus, use_ripgrep)
    sensitive = tools.grep("needle", "src/util/*")
    insensitive = tools.grep("needle", "src/util/*", ignore_case=True)
    assert located(sensitive) == [("src/util/helpers.py", 3)]
    assert located(insensitive) == [("src/util/helpers.py", n) for n in (1, 2, 3)]


def test_pattern_ripgrep_cannot_run_falls_back_to_python(corpus: Path) -> None:
    result = FileTools(corpus).grep("(?<=return ')needle")
    assert result.backend == "python"
    assert located(result) == [("lib/widget.js", 1), ("src/app.py", 4)]


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
@pytest.mark.parametrize("pattern", ["(unclosed", "[a-", "*star", ""])
def test_invalid_regex_is_a_sandbox_error(corpus: Path, use_ripgrep: bool, pattern: str) -> None:
    with pytest.raises(SandboxError, match="regex"):
        tools_for(corpus, use_ripgrep).grep(pattern)


@pytest.mark.parametrize("glob", ["[abc", "{a,b", "a}b", "{a,{b,c}}"])
def test_invalid_glob_is_a_sandbox_error(corpus: Path, glob: str) -> None:
    with pytest.raises(SandboxError, match="glob"):
        FileTools(corpus).grep("needle", glob)


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
def test_grep_caps_results_and_says_so(corpus: Path, use_ripgrep: bool) -> None:
    tools = tools_for(corpus, use_ripgrep, max_results=3)
    capped = tools.grep("needle")
    assert located(capped) == EXPECTED[:3]
    assert capped.truncated and capped.note is not None and "stopped after 3" in capped.note
    wider = tools.grep("needle", max_results=len(EXPECTED))
    assert located(wider) == EXPECTED and not wider.truncated
    with pytest.raises(SandboxError, match="max_results"):
        tools.grep("needle", max_results=0)


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
def test_grep_caps_output_size(corpus: Path, use_ripgrep: bool) -> None:
    result = tools_for(corpus, use_ripgrep, max_output_chars=150).grep("needle")
    assert result.truncated and 1 <= len(result.matches) < len(EXPECTED)
    assert result.note is not None and "150 characters" in result.note


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
def test_long_lines_are_cut_around_the_match(tmp_path: Path, use_ripgrep: bool) -> None:
    root = write(tmp_path, {"min.js": "a" * 2000 + "NEEDLE" + "b" * 2000 + "\n"})
    match = tools_for(root, use_ripgrep).grep("NEEDLE").matches[0]
    assert "NEEDLE" in match.text and match.column == 2001
    assert len(match.text) == LINE_CHARS + 2
    assert match.text.startswith("…") and match.text.endswith("…")


def test_python_backend_reports_a_timeout(corpus: Path) -> None:
    result = FileTools(corpus, use_ripgrep=False, grep_timeout=1e-9).grep("needle")
    assert result.truncated and result.note is not None and "timed out" in result.note


@pytest.mark.skipif(RG is None, reason="no rg")
def test_ripgrep_is_the_default_backend_when_installed(corpus: Path) -> None:
    tools = FileTools(corpus)
    assert tools.ripgrep is not None and Path(tools.ripgrep).name == "rg"
    assert tools.grep("needle").backend == "ripgrep"
    assert FileTools(corpus, use_ripgrep=False).ripgrep is None


@pytest.mark.parametrize("use_ripgrep", BACKENDS)
def test_grep_result_to_dict_is_json(corpus: Path, use_ripgrep: bool) -> None:
    data = tools_for(corpus, use_ripgrep).grep("needle", "*.js").to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["matches"] == [
        {
            "path": "lib/widget.js",
            "line": 1,
            "column": 36,
            "text": "export function widget() { return 'needle'; }",
        }
    ]


TREE = [
    "build/a.py",
    "build/sub/b.py",
    "src/build/c.py",
    "src/x.py",
    "src/x.pyc",
    "src/gen/g.py",
    "docs/a/b/c.md",
    "docs/r.md",
    "temp/t.txt",
    "src/temp/t.txt",
    "keep/important.log",
    "x.log",
    "a b/c d.txt",
    "#hash.txt",
]
IGNORE_FILES = [
    ["build"],
    ["/build"],
    ["build/"],
    ["*.py[co]"],
    ["docs/**/*.md"],
    ["**/temp"],
    ["*.log", "!keep/*.log"],
    ["src/*", "!src/x.py"],
    ["*", "!*/", "!*.py"],
    ["docs/*", "!docs/a/"],
    ["\\#hash.txt", "# a comment", "", "a\\ b/   "],
    ["build/*", "!build/sub/"],
]


@pytest.mark.timeout(30)
@pytest.mark.skipif(RG is None, reason="no rg")
@pytest.mark.parametrize("ignore_lines", IGNORE_FILES, ids=lambda lines: "|".join(lines))
def test_backends_agree_on_gitignore_rules(tmp_path: Path, ignore_lines: list[str]) -> None:
    root = write(tmp_path, {rel: "hit\n" for rel in TREE})
    write(root, {".gitignore": "\n".join(ignore_lines) + "\n", "src/.gitignore": "gen/\n"})
    for glob in (None, "*.py", "!*.md", "src/**"):
        fast = FileTools(root, use_ripgrep=True).grep("hit", glob)
        slow = FileTools(root, use_ripgrep=False).grep("hit", glob)
        assert located(fast) == located(slow), glob
        assert fast.backend == "ripgrep"


def test_gitignore_rules_in_the_python_walk(tmp_path: Path) -> None:
    root = write(tmp_path, {rel: "hit\n" for rel in TREE})
    write(root, {".gitignore": "*\n!*/\n!*.py\n", "src/.gitignore": "gen/\n"})
    found = [path for path, _ in located(FileTools(root, use_ripgrep=False).grep("hit"))]
    assert found == ["build/a.py", "build/sub/b.py", "src/build/c.py", "src/x.py"]


@pytest.mark.skipif(RG is None, reason="no rg")
def test_ripgrep_backend_reports_a_timeout(tmp_path: Path) -> None:
    root = write(tmp_path, {f"d{n}/f{m}.txt": "hit\n" * 50 for n in range(20) for m in range(20)})
    result = FileTools(root, use_ripgrep=True, grep_timeout=1e-6).grep("hit", max_results=100000)
    assert result.backend == "ripgrep"
    assert result.truncated and result.note is not None and "timed out" in result.note
