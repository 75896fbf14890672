"""`peek memory <corpus> ...`: ingest conversations and documents, search memory, list episodes.

The corpus comes first, then the command: `peek memory <corpus> ingest FILE.jsonl`,
`peek memory <corpus> search "q" -k 5 --budget 1500 --json`, `peek memory <corpus> episodes`,
`peek memory <corpus> entities`; `peek memory <corpus>` alone prints a summary. The corpus must
be indexed first (`peek index <corpus>`); for conversation-only material, index the folder that
holds the JSONL file. numpy and faiss load only when a command runs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from peek.service import Peek


class CorpusFirst(TyperGroup):
    """`peek memory <corpus> [command]`: a corpus with no command runs `show`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Insert `show` after a corpus that no known command follows."""
        if args and not args[0].startswith("-") and (len(args) == 1
                                                     or args[1] not in self.commands):
            args = [args[0], "show", *args[1:]]
        return super().parse_args(ctx, args)


memory_app = typer.Typer(
    name="memory",
    cls=CorpusFirst,
    rich_markup_mode=None,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Episodic memory of a corpus: `peek memory <corpus> ingest FILE.jsonl`, "
         "`peek memory <corpus> search \"q\"`, `peek memory <corpus> episodes`, "
         "`peek memory <corpus> entities`. The corpus comes first; options go last.",
)

HomeOpt = Annotated[Path | None, typer.Option(
    "--home", help="Where peek keeps its state (default: $PEEK_HOME or the user data dir).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def emit(payload: Any) -> None:
    """Print one JSON document on stdout."""
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")


@contextmanager
def opened(ctx: typer.Context, home: Path | None) -> Iterator[tuple[Peek, int]]:
    """The service and corpus id of the corpus given before the command; closed afterwards."""
    from peek.service import Peek

    peek = Peek(ctx.obj["corpus"], home)
    try:
        yield peek, peek.corpus_id
    finally:
        peek.close()


@memory_app.callback()
def memory(ctx: typer.Context,
           corpus: Annotated[Path, typer.Argument(help="The indexed corpus.")]) -> None:
    """Episodic memory of an indexed corpus."""
    ctx.obj = {"corpus": corpus}


@memory_app.command("show")
def show(ctx: typer.Context, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """A summary: episodes, windows, entities, stale items and the embedder in use."""
    with opened(ctx, home) as (peek, cid):
        report = summary(peek, cid)
    if as_json:
        emit(report)
    else:
        print_summary(report)


def summary(peek: Peek, corpus_id: int) -> dict[str, Any]:
    """Counts of turns, episodes and entities, and the embedder in use."""
    from peek.memory.embed import active_embedder_name
    from peek.memory.invalidation import stale_summary
    from peek.memory.query import list_entities, list_episodes

    episodes = list_episodes(peek.db, corpus_id)
    return {"corpus": str(peek.root), "embedder": active_embedder_name(),
            "episodes": len(episodes), "windows": sum(e["size"] for e in episodes),
            "entities": len(list_entities(peek.db, corpus_id)),
            "stale": stale_summary(peek.db, corpus_id)}


def print_summary(report: dict[str, Any]) -> None:
    """The summary as a few lines."""
    print(f"{report['corpus']}: {report['episodes']} episodes over {report['windows']} windows, "
          f"{report['entities']} entities (embedder: {report['embedder']})")
    stale = report["stale"]
    if stale["turns"] or stale["nodes"]:
        print(f"stale: {stale['turns']} turns, {stale['nodes']} workspace nodes cite changed code")


@memory_app.command("ingest")
def ingest(ctx: typer.Context,
           file: Annotated[Path, typer.Argument(help="A .jsonl conversation log (one turn per "
                                                "line) or a text document.")],
           home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Remember a conversation log or a document (turns already remembered are skipped)."""
    from peek.memory.ingest import ingest_file

    with opened(ctx, home) as (peek, cid):
        counts = ingest_file(peek.db, cid, file)
    if as_json:
        emit({"file": str(file), **counts})
    else:
        print(f"{file}: {counts['added']} turns remembered, {counts['skipped']} already known; "
              f"{counts['episodes']} episodes over {counts['windows']} windows")


@memory_app.command("search")
def search(ctx: typer.Context,
           query: Annotated[str, typer.Argument(help="A question or words to look for.")],
           k: Annotated[int, typer.Option("-k", "--top", help="How many items at most.")] = 10,
           budget: Annotated[int, typer.Option("--budget", help="Token budget of the block.")
                             ] = 2000,
           home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Ranked memory items for a question, each naming its source turns, within a budget."""
    from peek.bounds import check_k, check_memory_budget
    from peek.errors import QueryError
    from peek.memory.query import memory_search

    if not query.strip():
        raise QueryError("the query is empty", "say what you want to remember")
    k, budget = check_k(k), check_memory_budget(budget)  # the same bounds as MCP
    with opened(ctx, home) as (peek, cid):
        found = memory_search(peek.db, cid, query, k, budget)
    if as_json:
        emit(found.to_dict())
        return
    for hit in found.results:
        episode = "-" if hit.episode is None else hit.episode
        print(f"{hit.score:8.3f}  e{episode}  {hit.text}")
    print(f"({len(found.results)} items, {found.tokens} tokens"
          + ("; memory knows none of the names in the question" if found.abstained else "") + ")")


@memory_app.command("episodes")
def episodes(ctx: typer.Context, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """The episodes: windows in each, block tokens and the sha256 of each block."""
    from peek.memory.query import list_episodes

    with opened(ctx, home) as (peek, cid):
        listed = list_episodes(peek.db, cid)
    if as_json:
        emit({"episodes": listed})
        return
    for e in listed:
        print(f"episode {e['id']}: {e['size']} windows, {e['tokens']} tokens, "
              f"sha256 {e['prefix_sha256'][:16]}")
    if not listed:
        print("(no episodes yet: ingest a conversation or record a session)")


@memory_app.command("entities")
def entities(ctx: typer.Context,
             limit: Annotated[int, typer.Option("--limit", help="Show at most this many.")
                              ] = 50,
             home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """The workspace's entities, most mentioned first."""
    from peek.memory.query import list_entities

    with opened(ctx, home) as (peek, cid):
        listed = list_entities(peek.db, cid)
    if as_json:
        emit({"entities": listed[:limit]})
        return
    for e in listed[:limit]:
        mark = " (stale)" if e["stale"] else ""
        print(f"{e['id']:>8}  {e['kind']:<7} {e['name']}{mark}  ·  {e['mentions']} mentions, "
              f"{e['first']} … {e['last']}")
    if not listed:
        print("(no entities yet)")
