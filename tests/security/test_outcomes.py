"""One outcome per action: status stays stable, the first index seeds once, memory goes stale
with the code it cites, and the offline answer cites only lines it read."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from helpers import SAMPLE, write_tree

from peek.agent.citations import extract_citations
from peek.service import Peek


def test_binary_file_with_an_unknown_suffix_keeps_status_clean(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "c", {"a.py": "x = 1\n", "data.bin2": b"\0\1\2" * 100})
    peek = Peek(root, tmp_path / "home")
    try:
        first = peek.index()
        assert first.skipped_binary == 1
        assert peek.status().dirty is False
        again = peek.index()
        assert (again.added, again.changed, again.skipped_binary) == (0, 0, 0)
        (root / "data.bin2").write_text("now text\n")
        assert peek.status().added == ["data.bin2"]
        assert peek.index().added == 1
        assert peek.status().dirty is False
    finally:
        peek.close()


def test_two_first_indexes_seed_the_map_once(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "c", SAMPLE)
    home = tmp_path / "home"
    code = ("import sys; from peek.service import Peek; "
            "p = Peek(sys.argv[1], sys.argv[2]); p.index(); p.close()")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(root), str(home)])
             for _ in range(2)]
    assert [p.wait(120) for p in procs] == [0, 0]
    with sqlite3.connect(home / "peek.db") as conn:
        version = conn.execute("SELECT version FROM map_state").fetchone()[0]
        seeds = conn.execute("SELECT COUNT(*) FROM map_edits WHERE op = 'SEEDED'").fetchone()[0]
    assert (version, seeds) == (1, 1)


def test_index_marks_memory_citing_changed_code_stale(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "c", SAMPLE)
    peek = Peek(root, tmp_path / "home")
    try:
        peek.index()
        peek.record({"question": "where are redirects followed", "steps": [
            {"tool": "read_file", "args": {"path": "src/http/session.py"},
             "paths": ["src/http/session.py"], "ok": True}], "answer": "", "citations": []})
        before = json.dumps(peek.memory_search("redirects", 5, 2000).to_dict())
        assert "stale" not in before or '"stale": false' in before
        (root / "src/http/session.py").write_text("def replaced():\n    pass\n")
        peek.index()
        with peek.db.read() as conn:
            stale = conn.exec_driver_sql("SELECT COUNT(*) FROM memory_turns WHERE stale = 1"
                                         ).scalar()
        assert stale and stale > 0
    finally:
        peek.close()


def test_offline_answer_cites_only_lines_it_read(tmp_path: Path) -> None:
    files = dict(SAMPLE)
    files["src/http/__init__.py"] = ""
    files["src/empty_redirects.py"] = ""
    root = write_tree(tmp_path / "c", files)
    peek = Peek(root, tmp_path / "home")
    try:
        peek.index()
        result = peek.ask("Where are redirects followed in the http session?")
        read = {(s["args"]["path"], s["args"]["start"]) for s in result.trajectory["steps"]
                if s["tool"] == "read_file" and s["ok"]}
        assert result.citations
        for c in result.citations:
            assert (c.path, c.start_line) in read
            assert c.path not in ("src/http/__init__.py", "src/empty_redirects.py")
        assert all(c.path not in ("src/http/__init__.py",)
                   for c in extract_citations(result.answer))
    finally:
        peek.close()
