"""Chunking and symbol extraction against real tree-sitter parses of small fixture files."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peek.retrieval import chunking
from peek.retrieval.chunking import ParsedChunk, ParsedFile, language_for, parse_file

FIXTURES = Path(__file__).parent / "fixtures" / "chunking"
ALL_FIXTURES = sorted(p.name for p in FIXTURES.iterdir() if not p.name.startswith("."))
CODE_FIXTURES = ["shapes.py", "widgets.js", "store.ts", "server.go", "broken.py", "crlf.py"]

FUZZ_LANGUAGES = ["python", "javascript", "typescript", "tsx", "go", "markdown", "rst"]

Span = tuple[int, int, str, str | None]


def parse(name: str) -> ParsedFile:
    path = FIXTURES / name
    return parse_file(str(path), path.read_bytes().decode("utf-8"))


def spans(parsed: ParsedFile) -> list[Span]:
    return [(c.start_line, c.end_line, c.kind, c.symbol) for c in parsed.chunks]


def definitions(parsed: ParsedFile) -> list[tuple[str, str, int, int]]:
    return [(d.qualname, d.kind, d.start_line, d.end_line) for d in parsed.definitions]


def fixture_lines(name: str) -> list[str]:
    return (FIXTURES / name).read_bytes().decode("utf-8").replace("\r\n", "\n").splitlines()


def assert_well_formed(chunks: list[ParsedChunk], lines: list[str]) -> None:
    for chunk in chunks:
        assert 1 <= chunk.start_line <= chunk.end_line <= len(lines), chunk
        assert chunk.text == "\n".join(lines[chunk.start_line - 1 : chunk.end_line]), chunk


# ---------------------------------------------------------------- languages


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("pkg/mod.py", "python"),
        ("stubs/mod.pyi", "python"),
        ("a.js", "javascript"),
        ("a.mjs", "javascript"),
        ("a.cjs", "javascript"),
        ("App.JSX", "javascript"),
        ("a.ts", "typescript"),
        ("a.mts", "typescript"),
        ("a.cts", "typescript"),
        ("App.tsx", "tsx"),
        ("main.go", "go"),
        ("README.md", "markdown"),
        ("notes.markdown", "markdown"),
        ("index.rst", "rst"),
        ("notes.txt", "text"),
        ("Makefile", "text"),
    ],
)
def test_language_for_maps_extensions(path: str, language: str) -> None:
    assert language_for(path) == language


def test_explicit_language_overrides_extension() -> None:
    parsed = parse_file("snippet.txt", "def f():\n    return 1\n", language="python")
    assert parsed.language == "python"
    assert spans(parsed) == [(1, 2, "function", "f")]


# ---------------------------------------------------------------- python


def test_python_chunks_follow_definitions() -> None:
    assert spans(parse("shapes.py")) == [
        (1, 12, "module", None),
        (15, 23, "function", "make_shape"),  # leading comment and decorator included
        (26, 42, "class", "Shape"),
        (31, 32, "method", "Shape.area"),
        (34, 36, "method", "Shape.label"),
        (38, 42, "class", "Shape.Meta"),
        (41, 42, "method", "Shape.Meta.describe"),
        (45, 50, "class", "Circle"),
        (46, 47, "method", "Circle.__init__"),
        (49, 50, "method", "Circle.area"),
        (53, 57, "module", None),
    ]


def test_python_nested_functions_are_definitions_but_not_chunks() -> None:
    parsed = parse("shapes.py")
    assert all(c.symbol != "make_shape.pick" for c in parsed.chunks)
    assert definitions(parsed) == [
        ("make_shape", "function", 16, 23),
        ("make_shape.pick", "function", 20, 21),
        ("Shape", "class", 26, 42),
        ("Shape.area", "method", 31, 32),
        ("Shape.label", "method", 34, 36),
        ("Shape.Meta", "class", 38, 42),
        ("Shape.Meta.describe", "method", 41, 42),
        ("Circle", "class", 45, 50),
        ("Circle.__init__", "method", 46, 47),
        ("Circle.area", "method", 49, 50),
        ("debug_dump", "function", 56, 57),
    ]
    assert parsed.definitions[1].name == "pick"


def test_python_imports_keep_relative_dots() -> None:
    assert parse("shapes.py").imports == [
        "__future__",
        "math",
        "os.path",
        "collections.abc",
        ".",
        "..units",
    ]


def test_python_identifiers_are_references_only() -> None:
    identifiers = parse("shapes.py").identifiers
    assert identifiers == sorted(identifiers)
    for used in ("convert", "Length", "join", "pi", "radius", "register", "NotImplementedError"):
        assert used in identifiers
    for defined in ("Shape", "Circle", "make_shape", "pick", "area", "describe", "debug_dump"):
        assert defined not in identifiers
    assert not [name for name in identifiers if len(name) < 2]
    assert not {"def", "return", "class", "import"} & set(identifiers)


def test_python_syntax_error_still_chunks_the_rest() -> None:
    parsed = parse("broken.py")
    assert spans(parsed) == [
        (1, 1, "module", None),
        (4, 5, "function", "good"),
        (8, 9, "function", "broken"),
        (12, 14, "class", "After"),
        (13, 14, "method", "After.method"),
    ]
    assert parsed.imports == ["os"]


def test_crlf_file_chunks_like_lf_and_drops_carriage_returns() -> None:
    parsed = parse("crlf.py")
    assert spans(parsed) == [
        (1, 1, "module", None),
        (4, 5, "function", "main"),
        (8, 10, "class", "App"),
        (9, 10, "method", "App.run"),
    ]
    assert parsed.chunks[1].text == "def main(argv):\n    return len(argv)"
    assert not any("\r" in c.text for c in parsed.chunks)


@pytest.mark.parametrize("text", ["", "\n\n", "   \n\t\n"])
def test_empty_or_blank_file_has_no_chunks(text: str) -> None:
    parsed = parse_file("empty.py", text)
    assert parsed == ParsedFile("python", [], [], [], [])


def test_empty_fixture_has_no_chunks() -> None:
    assert parse("empty.py").chunks == []


def test_long_function_is_split_into_windows_keeping_its_symbol() -> None:
    body = [f"    total += {i}" for i in range(448)]
    text = "\n".join(["def long_sum():", "    total = 0", *body, "    return total"]) + "\n"
    chunks = parse_file("long.py", text).chunks
    assert [(c.start_line, c.end_line) for c in chunks] == [
        (1, 91),
        (92, 182),
        (183, 273),
        (274, 364),
        (365, 451),
    ]
    assert {(c.kind, c.symbol) for c in chunks} == {("function", "long_sum")}


def test_huge_class_chunk_is_only_its_header() -> None:
    methods = [f"    def m{i}(self):\n        return {i}\n" for i in range(80)]
    text = 'class Big:\n    """Many methods."""\n    size = 3\n\n' + "\n".join(methods)
    text += "\n    tail = 1\n"
    parsed = parse_file("big.py", text)
    class_chunks = [c for c in parsed.chunks if c.kind == "class"]
    assert [(c.start_line, c.end_line) for c in class_chunks] == [(1, 3), (245, 245)]
    assert {c.symbol for c in class_chunks} == {"Big"}
    assert class_chunks[1].text == "    tail = 1"
    methods_seen = [c.symbol for c in parsed.chunks if c.kind == "method"]
    assert methods_seen == [f"Big.m{i}" for i in range(80)]


def test_module_code_is_grouped_in_capped_chunks() -> None:
    text = "".join(f"CONSTANT_{i} = {i}\n" for i in range(150)) + "\ndef f():\n    pass\n"
    parsed = parse_file("consts.py", text)
    assert spans(parsed) == [
        (1, 60, "module", None),
        (61, 120, "module", None),
        (121, 150, "module", None),
        (152, 153, "function", "f"),
    ]


def test_module_chunks_do_not_cut_a_statement() -> None:
    table = ["TABLE = {"] + [f"    'k{i}': {i}," for i in range(70)] + ["}"]
    text = "import os\n" + "\n".join(table) + "\nX = os.sep\n"
    assert spans(parse_file("table.py", text)) == [
        (1, 1, "module", None),
        (2, 73, "module", None),
        (74, 74, "module", None),
    ]


def test_identifiers_are_capped() -> None:
    text = "".join(f"value = name_{i:04d}\n" for i in range(2500))
    identifiers = parse_file("many.py", text).identifiers
    assert len(identifiers) == 2000
    assert identifiers[0] == "name_0000"


def test_parser_failure_falls_back_to_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(language: str) -> object:
        raise RuntimeError("grammar unavailable")

    monkeypatch.setattr(chunking, "parser", explode)
    parsed = parse_file("shapes.py", (FIXTURES / "shapes.py").read_text())
    assert parsed.language == "python"
    assert spans(parsed) == [(1, 50, "window", None), (41, 57, "window", None)]


# ---------------------------------------------------------------- javascript / typescript


def test_javascript_chunks() -> None:
    assert spans(parse("widgets.js")) == [
        (1, 6, "module", None),
        (8, 14, "function", "renderWidget"),  # JSDoc block attached
        (16, 16, "function", "formatLabel"),
        (18, 21, "function", "loadTheme"),
        (23, 40, "class", "Counter"),
        (27, 30, "method", "Counter.constructor"),
        (32, 35, "method", "Counter.increment"),
        (37, 39, "method", "Counter.reset"),
        (42, 42, "module", None),
    ]


def test_javascript_imports_cover_import_require_export_and_dynamic() -> None:
    assert parse("widgets.js").imports == [
        "react",
        "./lib/path.js",
        "./helpers",
        "fs",
    ]


def test_javascript_dynamic_import_with_literal() -> None:
    parsed = parse_file("lazy.js", 'const m = import("./lazy/module");\n')
    assert parsed.imports == ["./lazy/module"]


def test_javascript_identifiers() -> None:
    identifiers = parse("widgets.js").identifiers
    for used in ("useState", "createElement", "toUpperCase", "React", "Base"):
        assert used in identifiers
    for defined in ("renderWidget", "formatLabel", "Counter", "increment"):
        assert defined not in identifiers


def test_typescript_chunks_and_definition_kinds() -> None:
    parsed = parse("store.ts")
    assert spans(parsed) == [
        (1, 2, "module", None),
        (4, 7, "class", "StoreOptions"),
        (9, 9, "class", "ItemId"),
        (11, 14, "class", "Status"),
        (16, 27, "class", "Store"),  # class decorator included
        (20, 24, "method", "Store.get"),  # comment and method decorator included
        (26, 26, "method", "Store.persist"),
        (29, 31, "function", "createStore"),
        (33, 35, "class", "Internal"),
    ]
    assert definitions(parsed) == [
        ("StoreOptions", "interface", 4, 7),
        ("ItemId", "type", 9, 9),
        ("Status", "enum", 11, 14),
        ("Store", "class", 16, 27),
        ("Store.get", "method", 22, 24),
        ("Store.persist", "method", 26, 26),
        ("createStore", "function", 29, 31),
        ("Internal", "namespace", 33, 35),
    ]
    assert parsed.imports == ["@angular/core", "./models/item"]


def test_tsx_parses_jsx() -> None:
    text = 'import React from "react";\n\nexport const App = () => <div className="x" />;\n'
    parsed = parse_file("App.tsx", text)
    assert parsed.language == "tsx"
    assert spans(parsed) == [(1, 1, "module", None), (3, 3, "function", "App")]
    assert "className" in parsed.identifiers


# ---------------------------------------------------------------- go


def test_go_chunks() -> None:
    assert spans(parse("server.go")) == [
        (1, 8, "module", None),
        (10, 14, "class", "Server"),
        (16, 21, "class", "Handler"),
        (23, 23, "class", "Box"),
        (25, 25, "module", None),
        (27, 30, "function", "NewServer"),
        (32, 38, "method", "Server.Handle"),
        (40, 42, "method", "Box.Get"),
    ]


def test_go_definitions_imports_and_identifiers() -> None:
    parsed = parse("server.go")
    assert definitions(parsed) == [
        ("Server", "struct", 11, 14),
        ("Handler", "interface", 16, 21),
        ("Port", "type", 20, 20),
        ("Box", "struct", 23, 23),
        ("NewServer", "function", 28, 30),
        ("Server.Handle", "method", 33, 38),
        ("Box.Get", "method", 40, 42),
    ]
    assert parsed.imports == ["fmt", "net/http", "sync"]
    assert {"Fprintf", "ResponseWriter", "Mutex"} <= set(parsed.identifiers)
    assert not {"func", "Handle", "NewServer"} & set(parsed.identifiers)


# ---------------------------------------------------------------- prose


def test_markdown_sections() -> None:
    parsed = parse("guide.md")
    assert spans(parsed) == [
        (1, 1, "section", None),
        (3, 5, "section", "User Guide"),
        (7, 12, "section", "Installing peek"),  # the "#" inside the code fence is no heading
        (14, 16, "section", "From source"),
        (18, 21, "section", "Configuration"),
        (23, 23, "section", "Usage"),
    ]
    assert [(d.name, d.kind) for d in parsed.definitions] == [
        ("User Guide", "heading"),
        ("Installing peek", "heading"),
        ("From source", "heading"),
        ("Configuration", "heading"),
        ("Usage", "heading"),
    ]
    assert parsed.imports == [] and parsed.identifiers == []


def test_rst_sections() -> None:
    parsed = parse("manual.rst")
    assert spans(parsed) == [
        (1, 2, "section", None),
        (4, 8, "section", "Peek Manual"),  # overline included
        (10, 16, "section", "Getting started"),  # indented underline in a literal block ignored
        (18, 27, "section", "Options"),  # table borders are no underlines
        (29, 32, "section", "Advanced use"),
    ]
    assert [d.name for d in parsed.definitions] == [
        "Peek Manual",
        "Getting started",
        "Options",
        "Advanced use",
    ]


def test_plain_text_windows_overlap() -> None:
    assert spans(parse("notes.txt")) == [
        (1, 50, "window", None),
        (41, 90, "window", None),
        (81, 100, "window", None),
    ]


# ---------------------------------------------------------------- invariants


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_chunk_text_is_exactly_its_lines(name: str) -> None:
    assert_well_formed(parse(name).chunks, fixture_lines(name))


@pytest.mark.parametrize("name", CODE_FIXTURES)
def test_every_nonblank_code_line_is_in_a_chunk(name: str) -> None:
    covered = {n for c in parse(name).chunks for n in range(c.start_line, c.end_line + 1)}
    lines = fixture_lines(name)
    missing = [n for n, line in enumerate(lines, 1) if line.strip() and n not in covered]
    assert missing == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    language=st.sampled_from(FUZZ_LANGUAGES),
    text=st.text(alphabet=st.sampled_from(list("def class(){}:=\"'#-\n\r\t x_1")), max_size=300),
)
def test_arbitrary_input_never_raises(language: str, text: str) -> None:
    parsed = parse_file("fuzz", text, language=language)
    lines = text.replace("\r\n", "\n").split("\n")
    assert_well_formed(parsed.chunks, lines[:-1] if lines[-1] == "" else lines)
