"""`peek memory COMMAND <corpus> ...` through CliRunner: ingest, search, episodes, entities,
summary, and the deprecated corpus-first order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from helpers import run_peek
from test_memory_helpers import conversation
from typer.testing import CliRunner, Result

from peek.cli.memory_commands import memory_app
from peek.errors import NotIndexedError, QueryError
from peek.retrieval.indexer import index_corpus
from peek.service import Peek


def make_app() -> typer.Typer:
    """The sub-app wired the way `peek` wires it."""
    app = typer.Typer()
    app.add_typer(memory_app, name="memory")

    @app.command()
    def version() -> None:
        """A second command so that `memory` stays a sub-command."""

    return app


@pytest.fixture
def cli(make_corpus: Any, tmp_path: Path) -> tuple[Any, Path, Path]:
    """(run, root, log): `run(command, *args)` invokes `memory command <root> ...` with this
    test's --home (no command: `memory <root>`, the summary)."""
    log = "\n".join(json.dumps(t) for t in conversation()) + "\n"
    root = make_corpus({"chat/conversation.jsonl": log})
    home = tmp_path / "home"
    service = Peek(root, home)
    index_corpus(service.db, service.root, service.settings.max_file_bytes)
    service.close()
    app = make_app()

    def run(*args: str) -> Result:
        words = ([args[0], str(root), *args[1:]] if args and not args[0].startswith("-")
                 else [str(root), *args])
        return CliRunner().invoke(app, ["memory", *words, "--home", str(home)])

    return run, root, root / "chat/conversation.jsonl"


def test_ingest_then_search_with_the_json_contract(cli: Any) -> None:
    run, _, log = cli
    first = run("ingest", str(log), "--json")
    assert first.exit_code == 0, first.output
    counts = json.loads(first.output)
    assert counts["file"] == str(log) and counts["added"] == 16 and counts["skipped"] == 0
    assert json.loads(run("ingest", str(log), "--json").output)["skipped"] == 16
    out = json.loads(run("search", "When did Bob renew his passport?", "-k", "2",
                         "--budget", "300", "--json").output)
    assert list(out) == ["results", "tokens"] and len(out["results"]) == 2
    assert all(set(r) == {"turn_ids", "text", "episode", "score"} for r in out["results"])
    assert "D2:7" in {t for r in out["results"] for t in r["turn_ids"]}
    assert 0 < out["tokens"] <= 300
    text = run("search", "passport").output
    assert "[D2:5]" in text and "tokens)" in text


def test_episodes_entities_and_summary(cli: Any) -> None:
    run, root, log = cli
    assert run("ingest", str(log)).exit_code == 0
    episodes = json.loads(run("episodes", "--json").output)
    assert list(episodes) == ["episodes"] and episodes["episodes"]
    assert set(episodes["episodes"][0]) == {"id", "size", "tokens", "prefix_sha256"}
    entities = json.loads(run("entities", "--json").output)["entities"]
    assert {e["name"] for e in entities[:2]} == {"Alice", "Bob"}
    summary = json.loads(run("--json").output)
    assert summary["corpus"] == str(root) and summary["embedder"] == "hash"
    assert "episodes over" in run().output


def test_errors_are_peek_errors(cli: Any, make_corpus: Any, tmp_path: Path) -> None:
    run, _, _ = cli
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "speaker": "A", "text": "ok"}\nnot json\n')
    result = run("ingest", str(bad))
    assert isinstance(result.exception, QueryError) and "bad.jsonl:2" in str(result.exception)
    assert isinstance(run("search", "  ").exception, QueryError)
    other = make_corpus({"a.md": "x\n"})
    result = CliRunner().invoke(make_app(), ["memory", "episodes", str(other), "--home",
                                             str(tmp_path / "home")])
    assert isinstance(result.exception, NotIndexedError)


def test_the_old_corpus_first_order_works_with_one_deprecation_line(cli: Any,
                                                                     tmp_path: Path) -> None:
    run, root, log = cli
    env = {"PEEK_HOME": str(tmp_path / "home")}
    old = run_peek("memory", str(root), "ingest", str(log), "--json", env=env)
    assert old.returncode == 0, old.stderr
    assert old.stderr.strip() == (
        "peek: deprecated: `peek memory PATH ingest` is now `peek memory ingest PATH`")
    assert json.loads(old.stdout)["added"] == 16
    assert json.loads(run("ingest", str(log), "--json").output)["skipped"] == 16
