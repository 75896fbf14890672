"""Confinement, list_dir and read_file, on real files, symlinks, FIFOs, sockets and devices."""

from __future__ import annotations

import ast
import json
import os
import socket
from pathlib import Path

import pytest
from helpers import write_tree as write

from peek.safefs import read_beneath
from peek.sandbox import FileSlice, FileTools, PathEscapeError, SandboxError

SANDBOX_DIR = Path(__file__).resolve().parent.parent / "sandbox"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A corpus with a sibling folder outside it, and symlinks into and out of it."""
    outside = write(tmp_path / "outside", {"secret.txt": "top secret\n"})
    root = write(
        tmp_path / "corpus",
        {
            "a.txt": "alpha\nbeta\ngamma\n",
            "sub/b.txt": "inside b\n",
            "sub/deeper/c.txt": "inside c\n",
        },
    )
    (root / "link_in.txt").symlink_to(root / "a.txt")
    (root / "linkdir_in").symlink_to(root / "sub", target_is_directory=True)
    (root / "link_out.txt").symlink_to(outside / "secret.txt")
    (root / "linkdir_out").symlink_to(outside, target_is_directory=True)
    (root / "relative_out.txt").symlink_to("../outside/secret.txt")
    return root


@pytest.fixture
def tools(corpus: Path) -> FileTools:
    return FileTools(corpus)


# --- confinement -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "../outside/secret.txt",
        "sub/../../outside/secret.txt",
        "sub/deeper/../../../outside",
        "..",
        "link_out.txt",
        "relative_out.txt",
        "linkdir_out",
        "linkdir_out/secret.txt",
        "linkdir_out/missing.txt",
    ],
)
def test_paths_leaving_the_root_are_refused(tools: FileTools, path: str) -> None:
    with pytest.raises(PathEscapeError, match="outside the corpus root"):
        tools.resolve(path)


def test_absolute_path_outside_root_is_refused(tools: FileTools, corpus: Path) -> None:
    secret = corpus.parent / "outside" / "secret.txt"
    assert secret.is_file()
    with pytest.raises(PathEscapeError):
        tools.read_file(str(secret))
    with pytest.raises(PathEscapeError):
        tools.list_dir("/")


def test_absolute_path_inside_root_is_fine(tools: FileTools, corpus: Path) -> None:
    assert tools.read_file(str(corpus / "sub" / "b.txt")).path == "sub/b.txt"
    assert tools.resolve(str(corpus)) == corpus.resolve()


def test_symlinks_inside_root_are_followed(tools: FileTools, corpus: Path) -> None:
    assert tools.resolve("link_in.txt") == (corpus / "a.txt").resolve()
    assert tools.read_file("link_in.txt").path == "a.txt"
    assert [e.name for e in tools.list_dir("linkdir_in").entries] == ["b.txt", "deeper"]
    assert tools.read_file("linkdir_in/deeper/c.txt").text == "   1| inside c"


def test_escape_error_is_a_sandbox_error_and_a_value_error(tools: FileTools) -> None:
    with pytest.raises(ValueError):
        tools.read_file("../outside/secret.txt")
    assert issubclass(PathEscapeError, SandboxError)


def test_every_tool_refuses_escapes(tools: FileTools) -> None:
    for call in (
        lambda: tools.read_file("linkdir_out/secret.txt"),
        lambda: tools.list_dir("linkdir_out"),
        lambda: tools.list_dir("../outside"),
        lambda: tools.glob("../outside/*"),
    ):
        with pytest.raises(PathEscapeError):
            call()


@pytest.mark.timeout(10)
def test_fifo_is_refused_without_blocking(tools: FileTools, corpus: Path) -> None:
    os.mkfifo(corpus / "pipe")
    (corpus / "pipe_link").symlink_to(corpus / "pipe")
    for path in ("pipe", "pipe_link"):
        with pytest.raises(SandboxError, match="named pipe"):
            tools.read_file(path)
        with pytest.raises(SandboxError, match="named pipe"):
            tools.list_dir(path)


@pytest.mark.timeout(10)
def test_reader_rechecks_type_on_the_descriptor(corpus: Path) -> None:
    os.mkfifo(corpus / "pipe")
    with pytest.raises(SandboxError, match="named pipe"):
        read_beneath(corpus.resolve(), "pipe", 1000)


def test_socket_is_refused(tools: FileTools, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(corpus)
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("sock")
        with pytest.raises(SandboxError, match="socket"):
            tools.read_file("sock")


def test_device_file_is_refused() -> None:
    if not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null on this system")
    with pytest.raises(SandboxError, match="character device"):
        FileTools("/dev").read_file("null")


def test_symlink_to_device_outside_root_is_an_escape(tools: FileTools, corpus: Path) -> None:
    (corpus / "null").symlink_to("/dev/null")
    with pytest.raises(PathEscapeError):
        tools.read_file("null")


def test_nul_in_path_is_refused(tools: FileTools) -> None:
    with pytest.raises(SandboxError, match="NUL"):
        tools.read_file("a.txt\0.png")


def test_non_string_path_is_refused(tools: FileTools) -> None:
    with pytest.raises(SandboxError, match="must be a string"):
        tools.resolve(42)  # type: ignore[arg-type]


def test_missing_path_says_so(tools: FileTools) -> None:
    with pytest.raises(SandboxError, match="no such file or directory 'nope.txt' in corpus"):
        tools.read_file("nope.txt")


def test_symlink_loop_is_refused(tools: FileTools, corpus: Path) -> None:
    (corpus / "loop1").symlink_to(corpus / "loop2")
    (corpus / "loop2").symlink_to(corpus / "loop1")
    with pytest.raises(SandboxError):
        tools.read_file("loop1")


def test_error_messages_are_one_line(tools: FileTools) -> None:
    with pytest.raises(SandboxError) as caught:
        tools.read_file("two\nlines.txt")
    assert "\n" not in str(caught.value)
    assert "list_dir" in str(caught.value)


def test_root_must_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="not a folder"):
        FileTools(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(SandboxError, match="not a folder"):
        FileTools(tmp_path / "file.txt")


def test_root_given_through_a_symlink(corpus: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(corpus, target_is_directory=True)
    tools = FileTools(alias)
    assert tools.read_file(str(alias / "a.txt")).path == "a.txt"
    with pytest.raises(PathEscapeError):
        tools.read_file("linkdir_out/secret.txt")


def test_limits_must_be_positive(corpus: Path) -> None:
    with pytest.raises(SandboxError, match="max_results"):
        FileTools(corpus, max_results=0)
    with pytest.raises(SandboxError, match="max_output_chars"):
        FileTools(corpus, max_output_chars=True)


# the one reader, the one walker, the one binary sniff, and the error types
SHARED = ("peek.safefs", "peek.retrieval.walk", "peek.blobs", "peek.errors")


def test_sandbox_imports_only_the_shared_reader_and_walker() -> None:
    for source in SANDBOX_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                assert node.level <= 1, f"{source.name} imports from outside sandbox"
                module = node.module or ""
                assert node.level == 1 or not module.startswith("peek") or module in SHARED, (
                    source.name)
            if isinstance(node, ast.Import):
                assert not any(alias.name.startswith("peek") for alias in node.names), source.name


# --- list_dir --------------------------------------------------------------------------------


def test_list_dir_sorts_and_labels_entries(tools: FileTools, corpus: Path) -> None:
    os.mkfifo(corpus / "pipe")
    listing = tools.list_dir(".")
    assert listing.path == "."
    kinds = {entry.name: (entry.kind, entry.size) for entry in listing.entries}
    assert [entry.name for entry in listing.entries] == sorted(kinds)
    assert kinds["a.txt"] == ("file", len("alpha\nbeta\ngamma\n"))
    assert kinds["sub"] == ("dir", None)
    assert kinds["link_out.txt"] == ("symlink", None)
    assert kinds["linkdir_in"] == ("symlink", None)
    assert kinds["pipe"] == ("other", None)
    assert listing.total == len(kinds) and not listing.truncated and listing.note is None


def test_list_dir_of_subfolder_reports_relative_path(tools: FileTools) -> None:
    listing = tools.list_dir("sub/deeper/")
    assert listing.path == "sub/deeper"
    assert [(e.name, e.kind) for e in listing.entries] == [("c.txt", "file")]


def test_list_dir_is_capped(corpus: Path) -> None:
    listing = FileTools(corpus, max_results=2).list_dir()
    assert len(listing.entries) == 2 and listing.total == 7
    assert listing.truncated
    assert listing.note is not None and "showing 2 of 7" in listing.note


def test_list_dir_on_a_file_points_to_read_file(tools: FileTools) -> None:
    with pytest.raises(SandboxError, match="use read_file"):
        tools.list_dir("a.txt")


def test_list_dir_to_dict_is_json(tools: FileTools) -> None:
    data = tools.list_dir("sub").to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["entries"][0] == {"name": "b.txt", "kind": "file", "size": 9}


# --- read_file -------------------------------------------------------------------------------


def test_read_file_numbers_lines(tools: FileTools) -> None:
    result = tools.read_file("a.txt")
    assert result == FileSlice(
        path="a.txt",
        start=1,
        end=3,
        total_lines=3,
        text="   1| alpha\n   2| beta\n   3| gamma",
        truncated=False,
    )


def test_read_file_slices_inclusively(tools: FileTools) -> None:
    result = tools.read_file("a.txt", start=2, end=2)
    assert (result.start, result.end, result.text) == (2, 2, "   2| beta")
    clamped = tools.read_file("a.txt", start=2, end=99)
    assert (clamped.start, clamped.end, clamped.total_lines) == (2, 3, 3)


def test_number_width_grows_with_line_numbers(tmp_path: Path) -> None:
    root = write(tmp_path, {"long.txt": "".join(f"line {n}\n" for n in range(1, 12001))})
    text = FileTools(root).read_file("long.txt", start=9999, end=10000).text
    assert text == " 9999| line 9999\n10000| line 10000"


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (4, None, "past the end"),
        (0, None, "start must be a line number >= 1"),
        (-1, None, "start must be"),
        (True, None, "start must be"),
        (3, 2, "before start"),
        (None, 0, "end must be"),
    ],
)
def test_read_file_rejects_bad_ranges(
    tools: FileTools, start: int | None, end: int | None, message: str
) -> None:
    with pytest.raises(SandboxError, match=message):
        tools.read_file("a.txt", start=start, end=end)


def test_read_file_handles_crlf_bom_and_missing_final_newline(tmp_path: Path) -> None:
    root = write(tmp_path, {"win.txt": b"\xef\xbb\xbfone\r\ntwo\r\nthree"})
    result = FileTools(root).read_file("win.txt")
    assert result.text == "   1| one\n   2| two\n   3| three"
    assert result.total_lines == 3 and result.decode_errors == 0


def test_read_file_empty_file(tmp_path: Path) -> None:
    root = write(tmp_path, {"empty.txt": ""})
    result = FileTools(root).read_file("empty.txt")
    assert (result.text, result.total_lines, result.start, result.end) == ("", 0, 0, 0)
    with pytest.raises(SandboxError, match="past the end"):
        FileTools(root).read_file("empty.txt", start=2)


def test_read_file_counts_invalid_utf8(tmp_path: Path) -> None:
    root = write(tmp_path, {"mixed.txt": b"ok \xff\xfe here\nreal \xef\xbf\xbd stays\n"})
    result = FileTools(root).read_file("mixed.txt")
    assert result.decode_errors == 2
    assert result.text == "   1| ok \ufffd\ufffd here\n   2| real \ufffd stays"


def test_read_file_refuses_binary_but_not_late_nul(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {"image.png": b"\x89PNG\r\n\x00\x00data", "late.txt": b"x" * 9000 + b"\n\x00\n"},
    )
    with pytest.raises(SandboxError, match="binary"):
        FileTools(root).read_file("image.png")
    assert FileTools(root).read_file("late.txt").total_lines == 2


def test_read_file_refuses_large_files(tmp_path: Path) -> None:
    root = write(tmp_path, {"big.txt": "x" * 101, "fits.txt": "x" * 100})
    tools = FileTools(root, max_file_bytes=100)
    with pytest.raises(SandboxError, match="101 bytes, over the 100-byte read limit"):
        tools.read_file("big.txt")
    assert tools.read_file("fits.txt").total_lines == 1


def test_read_file_on_a_folder_points_to_list_dir(tools: FileTools) -> None:
    with pytest.raises(SandboxError, match="use list_dir"):
        tools.read_file("sub")


def test_read_file_is_cut_between_lines_and_says_where_to_go_on(tmp_path: Path) -> None:
    root = write(tmp_path, {"many.txt": "".join(f"row {n:03}\n" for n in range(1, 101))})
    tools = FileTools(root, max_output_chars=60)
    first = tools.read_file("many.txt")
    assert first.truncated and (first.start, first.end) == (1, 4)
    assert len(first.text) <= 60
    assert first.note is not None and "start=5" in first.note
    follow = tools.read_file("many.txt", start=first.end + 1)
    assert follow.text.startswith("   5| row 005")


def test_read_file_cuts_a_single_overlong_line(tmp_path: Path) -> None:
    root = write(tmp_path, {"min.js": "x" * 500 + "\nshort\n"})
    result = FileTools(root, max_output_chars=100).read_file("min.js")
    assert result.truncated and (result.start, result.end) == (1, 1)
    assert len(result.text) == 100 and result.text.startswith("   1| xxx")
    assert result.note is not None and "start=2" in result.note


def test_read_file_to_dict_is_json(tools: FileTools) -> None:
    data = tools.read_file("sub/b.txt").to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["text"] == "   1| inside b" and data["truncated"] is False
