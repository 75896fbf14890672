"""`peek map ...` and `peek record` through typer's CliRunner, including the --json contracts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from peek.cli.map_commands import map_app, record
from peek.contextmap.errors import EntryNotFoundError, MapImportError, TrajectoryError
from peek.errors import NotIndexedError
from peek.retrieval.indexer import index_corpus
from peek.service import Peek

FILES = {
    "lib/parser.py": "class Parser:\n    def parse(self, text):\n        return text.split()\n",
    "lib/cli.py": "from lib.parser import Parser\n\n\ndef main():\n    return Parser()\n",
}
SESSION = {"question": "Where is the Parser defined?", "answer": "lib/parser.py",
           "citations": [{"path": "lib/parser.py", "start_line": 1, "end_line": 3}],
           "outcome": {"edited_files": [], "success": True}}  # confirmed, so it teaches


def make_app() -> typer.Typer:
    """The commands wired the way `peek` wires them."""
    app = typer.Typer()
    app.add_typer(map_app, name="map")
    app.command("record")(record)
    return app


@pytest.fixture
def cli(make_corpus, tmp_path: Path) -> tuple[Any, Path, Path]:
    """(run, root, tmp): `run(*args)` invokes the app with this test's --home."""
    root = make_corpus(FILES)
    home = tmp_path / "home"
    service = Peek(root, home)
    index_corpus(service.db, service.root, service.settings.max_file_bytes)  # no bootstrap
    service.close()
    app = make_app()

    def run(*args: str) -> Result:
        return CliRunner().invoke(app, [*args, "--home", str(home)])

    return run, service.root, tmp_path


def recorded(run: Any, root: Path, tmp: Path, payload: dict[str, Any] = SESSION) -> Result:
    file = tmp / "trajectory.json"
    file.write_text(json.dumps(payload))
    return run("record", str(root), "--trajectory", str(file), "--json")


def test_map_path_shows_the_map_and_json_has_the_contract_shape(cli) -> None:
    run, root, tmp = cli
    empty = run("map", str(root), "--json")
    assert empty.exit_code == 0, empty.output
    assert json.loads(empty.output) == {"corpus": str(root), "version": 0,
                                        "budget_tokens": 1024, "tokens": 0, "entries": []}
    assert "the map is empty" in run("map", str(root)).output
    assert recorded(run, root, tmp).exit_code == 0
    shown = json.loads(run("map", "show", str(root), "--json").output)
    assert list(shown) == ["corpus", "version", "budget_tokens", "tokens", "entries"]
    entry = shown["entries"][0]
    assert entry == {"id": "cr-00001", "section": "cr", "score": 0.0, "pinned": False,
                     "stale": False, "text": entry["text"]}
    assert entry["text"].startswith("Parser: lib/parser.py:1-3")
    text = run("map", str(root)).output
    assert "== CONTEXT ROADMAP ==\n[cr-00001] Parser" in text and "v1 · " in text


def test_record_prints_the_edits_and_sets_the_budget(cli) -> None:
    run, root, tmp = cli
    result = recorded(run, root, tmp)
    out = json.loads(result.output)
    assert out["status"] == "applied" and out["version"] == 1
    assert [(e["op"], e["id"]) for e in out["edits"]] == [("ADD", "cr-00001")]
    assert set(out) == {"corpus", "session", "status", "version", "tokens", "budget_tokens",
                        "diagnosis", "tags", "edits", "evicted", "error"}
    file = tmp / "trajectory.json"
    text = run("record", str(root), "-t", str(file), "--budget", "200", "--session", "s-42").output
    assert "session s-42: applied, map v2" in text and "/200 tokens" in text
    assert "TAG      cr-00001   helpful" in text
    assert json.loads(run("map", str(root), "--json").output)["budget_tokens"] == 200


def test_history_diff_and_rollback(cli) -> None:
    run, root, tmp = cli
    recorded(run, root, tmp)
    assert run("map", "forget", str(root), "cr-00001").exit_code == 0
    history = json.loads(run("map", "history", str(root), "--json").output)
    assert [v["version"] for v in history["versions"]] == [2, 1]
    assert history["versions"][0]["edits"][0]["op"] == "FORGET"
    diff = json.loads(run("map", "diff", str(root), "1", "2", "--json").output)
    assert [(c["id"], c["change"]) for c in diff["changes"]] == [("cr-00001", "removed")]
    assert run("map", "diff", str(root), "1", "2").output.startswith("- [cr-00001] Parser")
    back = json.loads(run("map", "rollback", str(root), "1", "--json").output)
    assert back == {"corpus": str(root), "version": 3, "rolled_back_to": 1}
    assert "FORGET" in run("map", "history", str(root)).output


def test_pin_unpin_edit_and_reset(cli) -> None:
    run, root, tmp = cli
    recorded(run, root, tmp)
    pinned = json.loads(run("map", "pin", str(root), "cr-00001", "--json").output)
    assert pinned == {"corpus": str(root), "version": 2, "id": "cr-00001", "pinned": True}
    assert json.loads(run("map", str(root), "--json").output)["entries"][0]["pinned"] is True
    assert "unpinned cr-00001 (map v3)" in run("map", "unpin", str(root), "cr-00001").output
    run("map", "edit", str(root), "cr-00001", "Parser class: lib/parser.py")
    assert json.loads(run("map", str(root), "--json").output)["entries"][0]["text"] == (
        "Parser class: lib/parser.py")
    assert "undo with: peek map rollback" in run("map", "reset", str(root)).output
    assert json.loads(run("map", str(root), "--json").output)["entries"] == []


def test_export_then_import_round_trips(cli) -> None:
    run, root, tmp = cli
    recorded(run, root, tmp)
    run("map", "pin", str(root), "cr-00001")
    before = json.loads(run("map", str(root), "--json").output)["entries"]
    out = tmp / "map.json"
    assert run("map", "export", str(root), "--output", str(out)).exit_code == 0
    assert json.loads(run("map", "export", str(root)).output) == json.loads(out.read_text())
    run("map", "reset", str(root))
    imported = json.loads(run("map", "import", str(root), str(out), "--json").output)
    assert imported["entries"] == 1
    assert json.loads(run("map", str(root), "--json").output)["entries"] == before


def test_errors_are_peek_errors(cli, make_corpus) -> None:
    run, root, tmp = cli
    assert isinstance(run("map", "pin", str(root), "cr-00042").exception, EntryNotFoundError)
    bad = tmp / "bad.json"
    bad.write_text('{"question": "q"}')
    failed = run("record", str(root), "--trajectory", str(bad))
    assert isinstance(failed.exception, TrajectoryError)
    assert "answer: Field required" in str(failed.exception)
    assert isinstance(run("map", "import", str(root), str(bad)).exception, MapImportError)
    other = make_corpus({"a.txt": "x\n"})
    assert isinstance(run("map", str(other)).exception, NotIndexedError)
