"""The `peek` command: a thin typer layer over the `Peek` service."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from peek.cli.map_commands import map_app, record

if TYPE_CHECKING:
    from peek.service import Peek

app = typer.Typer(
    name="peek",
    help="An orientation cache and agent memory for corpora that agents read again and again.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: importing rich's renderer costs ~250 ms
)

app.add_typer(map_app, name="map", help="Show and correct a corpus's context map.")
app.command("record")(record)

CorpusArg = Annotated[
    Path, typer.Argument(help="The corpus: a repository or a folder of documents.")
]
HomeOpt = Annotated[
    Path | None,
    typer.Option("--home", help="Where peek keeps its state (default: $PEEK_HOME)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def emit_json(payload: Any) -> None:
    """Print one JSON document on stdout."""
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")


def open_peek(path: Path, home: Path | None) -> Peek:
    """The service for a corpus path and home, imported lazily to keep `--help` fast."""
    from peek.service import Peek

    return Peek(path, home)


@app.command()
def index(path: CorpusArg, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Index a corpus (incremental: only added or changed files are read)."""
    from peek.cli.render import index_progress, print_index_stats

    peek = open_peek(path, home)
    with index_progress(enabled=not as_json) as progress:
        stats = peek.index(progress)
    if as_json:
        emit_json(stats.to_dict())
    else:
        print_index_stats(stats)


@app.command()
def search(
    path: CorpusArg,
    query: Annotated[str, typer.Argument(help="Words, identifiers or a question.")],
    k: Annotated[int, typer.Option("-k", "--top", help="How many hits to show.")] = 10,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search an indexed corpus; every hit cites path:start-end."""
    from peek.cli.render import print_hits

    hits = open_peek(path, home).search(query, k)
    if as_json:
        emit_json({"results": [h.to_dict() for h in hits]})
    else:
        print_hits(hits)


@app.command()
def doctor(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Show versions, the store path, optional parts and whether tiktoken works offline."""
    from peek.cli.doctor import collect, print_report

    report = collect(home)
    if as_json:
        emit_json(report)
    else:
        print_report(report)


def main() -> None:
    """Entry point: run the app, turning known errors into one line on stderr and exit code 2."""
    from peek.cli.errors import run_guarded

    sys.exit(run_guarded(app))
