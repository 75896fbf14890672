"""The real `peek` console script: JSON contracts and one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import SAMPLE, run_peek

from peek.service import Peek


def test_index_and_search_json_contracts(make_corpus, home: Path) -> None:
    root = make_corpus(SAMPLE)
    out = run_peek("index", str(root), "--json")
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    assert {"corpus", "files", "chunks", "added", "changed", "removed", "seconds"} <= set(stats)
    assert (stats["corpus"], stats["files"], stats["added"]) == (str(root.resolve()), 4, 4)
    out = run_peek("search", str(root), "resolve redirects", "-k", "3", "--json")
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)["results"]
    assert 0 < len(results) <= 3
    assert set(results[0]) == {"path", "start_line", "end_line", "symbol", "score"}
    assert results[0]["path"] == "src/http/session.py"
    assert 1 <= results[0]["start_line"] <= results[0]["end_line"]


def test_first_index_seeds_the_context_map(make_corpus, home: Path) -> None:
    root = make_corpus(SAMPLE)
    assert run_peek("index", str(root)).returncode == 0
    shown = json.loads(run_peek("map", str(root), "--json").stdout)
    assert shown["version"] == 1
    assert 0 < shown["tokens"] <= shown["budget_tokens"] // 2
    assert all(e["section"] == "cr" for e in shown["entries"])
    assert run_peek("index", str(root)).returncode == 0
    assert json.loads(run_peek("map", str(root), "--json").stdout)["version"] == 1


def test_human_search_output_cites_path_and_lines(make_corpus, home: Path) -> None:
    root = make_corpus(SAMPLE)
    run_peek("index", str(root))
    out = run_peek("search", str(root), "getMaxRetries")
    assert out.returncode == 0
    assert "src/http/adapters.py:6-7" in out.stdout


def test_peek_home_relocates_every_byte(make_corpus, tmp_path: Path) -> None:
    root = make_corpus(SAMPLE)
    elsewhere = tmp_path / "elsewhere"
    out = run_peek("index", str(root), env={"PEEK_HOME": str(elsewhere)})
    assert out.returncode == 0, out.stderr
    assert (elsewhere / "peek.db").is_file()
    assert not list(root.rglob("*.db"))


def assert_one_line_error(out, needle: str) -> None:
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("peek: error:") and needle in lines[0]
    assert "Traceback" not in out.stderr


def test_missing_path(tmp_path: Path, home: Path) -> None:
    assert_one_line_error(run_peek("index", str(tmp_path / "nope")), "no such folder")


def test_file_where_folder_expected(tmp_path: Path, home: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("x")
    assert_one_line_error(run_peek("index", str(target)), "not a folder")


def test_empty_corpus(tmp_path: Path, home: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert_one_line_error(run_peek("index", str(tmp_path / "empty")), "no indexable files")


def test_empty_query(make_corpus, home: Path) -> None:
    root = make_corpus(SAMPLE)
    run_peek("index", str(root))
    assert_one_line_error(run_peek("search", str(root), "   "), "query is empty")


def test_search_before_index(make_corpus, home: Path) -> None:
    assert_one_line_error(run_peek("search", str(make_corpus(SAMPLE)), "x"), "not indexed")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any folder")
def test_unreadable_folder(tmp_path: Path, home: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        assert_one_line_error(run_peek("index", str(locked)), "cannot read")
    finally:
        locked.chmod(0o755)


def test_corrupt_store_is_reported_and_kept(make_corpus, home: Path) -> None:
    home.mkdir(parents=True)
    (home / "peek.db").write_bytes(b"garbage" * 100)
    assert_one_line_error(run_peek("index", str(make_corpus(SAMPLE))), "not a SQLite database")
    assert (home / "peek.db").read_bytes() == b"garbage" * 100


def test_doctor_reports_store_and_offline_tiktoken(home: Path) -> None:
    out = run_peek("doctor", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["store"] == str(home / "peek.db")
    assert report["tiktoken_offline"]["ok"] is True
    assert report["packages"]["sqlalchemy"]
    assert set(report["optional"]) >= {"vllm", "embeddings (onnxruntime, MiniLM)"}
    assert report["embedder"] in ("hash", "minilm")


def test_help_lists_commands() -> None:
    out = run_peek("--help")
    assert out.returncode == 0
    for command in ("index", "search", "doctor"):
        assert command in out.stdout


def test_corpora_lists_what_a_store_holds(make_corpus, home: Path) -> None:
    empty = run_peek("corpora", "--json")
    assert empty.returncode == 0, empty.stderr
    assert json.loads(empty.stdout) == {"home": str(home), "corpora": []}
    assert not (home / "peek.db").exists()  # listing never creates a store
    first, second = make_corpus(SAMPLE), make_corpus({"notes.md": "# Notes\n"})
    for root in (first, second):
        with Peek(root) as sdk:  # in-process: the listing, not indexing, is under test
            sdk.index()
    listed = json.loads(run_peek("corpora", "--json").stdout)["corpora"]
    assert [c["root"] for c in listed] == sorted([str(first.resolve()), str(second.resolve())])
    by_root = {c["root"]: c for c in listed}
    assert by_root[str(first.resolve())]["files"] == len(SAMPLE)
    assert by_root[str(second.resolve())]["memory_turns"] == 0
    assert all(c["map_version"] >= 1 and c["indexed_at"] for c in listed)
    text = run_peek("corpora").stdout
    assert str(first.resolve()) in text and "files, indexed" in text


#: what `peek record` used to load and no longer needs (SQLAlchemy and the ORM tables, faiss for
#: a one-episode memory, numpy.ma through np.unique, the sandbox tools and pathspec)
RECORD_UNUSED = ("sqlalchemy", "peek.schema", "peek.memory.tables", "peek.contextmap.tables",
                 "peek.agent.tables", "faiss", "numpy.ma", "peek.sandbox.tools", "pathspec")
#: a retraction plans nothing: no Distiller, Cartographer or trajectory model either
RETRACT_UNUSED = (*RECORD_UNUSED, "peek.contextmap.distiller", "peek.contextmap.cartographer",
                  "peek.contextmap.trajectory")


def _modules_after(argv: list[str], names: tuple[str, ...]) -> tuple[str, list[str]]:
    """Run `peek ARGV` as its own process (the CLI's `main`) and report its stdout and which of
    `names` it had imported by the end."""
    code = ("import json, sys\n"
            "from peek.cli.app import main\n"
            f"sys.argv = {['peek', *argv]!r}\n"
            "try:\n    main()\n"
            "except SystemExit as done:\n    assert not done.code, done.code\n"
            f"print(json.dumps(sorted(m for m in {names!r} if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    *said, loaded = out.stdout.splitlines()
    return "\n".join(said), json.loads(loaded)


def test_record_and_retract_stay_lean(make_corpus, home: Path) -> None:
    root = make_corpus(SAMPLE)
    assert run_peek("index", str(root)).returncode == 0
    asked = run_peek("ask", str(root), "where are redirects followed", "--json")
    session = json.loads(asked.stdout)["session"]
    said, loaded = _modules_after(["record", str(root), "--session", session, "--edited",
                                   "src/http/session.py", "--success"], RECORD_UNUSED)
    assert f"session {session}: applied" in said
    assert loaded == []
    said, loaded = _modules_after(["record", str(root), "--session", session, "--retract"],
                                  RETRACT_UNUSED)
    assert f"session {session}: retracted" in said
    assert loaded == []
