"""`peek memory ...`: ingest conversations and documents, search memory, list episodes.

Like every group, the command comes first, then the corpus: `peek memory ingest <corpus>
FILE.jsonl`, `peek memory search <corpus> "q" -k 5 --budget 1500 --json`, `peek memory episodes
<corpus>`, `peek memory entities <corpus>`, `peek memory forget <corpus> TURN_ID...` (and
`peek memory forgotten <corpus>`, its log); `peek memory <corpus>` alone prints a summary. The
old order (`peek memory <corpus> ingest FILE`) still works and prints a deprecation line. The
corpus must be indexed first (`peek index <corpus>`); for conversation-only material, index the
folder that holds the JSONL file. numpy and faiss load only when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from peek.cli.common import (
    CorpusArg,
    CorpusGroup,
    HomeOpt,
    JsonOpt,
    command_group,
    emit,
    opened,
)

if TYPE_CHECKING:
    from peek.service import Peek


class MemoryGroup(CorpusGroup):
    """`peek memory COMMAND CORPUS ...`; the old `peek memory CORPUS COMMAND ...` is deprecated."""

    corpus_first_deprecated = True


memory_app = command_group(
    "memory",
    "Episodic memory of a corpus: `peek memory ingest <corpus> FILE.jsonl`, "
    "`peek memory search <corpus> \"q\"`, `peek memory episodes <corpus>`, "
    "`peek memory entities <corpus>`, `peek memory forget <corpus> TURN_ID...`; "
    "`peek memory <corpus>` shows a summary. "
    "Options go last.",
    MemoryGroup,
)


@memory_app.command("show")
def show(corpus: CorpusArg, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """A summary: episodes, windows, entities, stale items and the embedder in use."""
    with opened(corpus, home) as (peek, cid):
        report = summary(peek, cid)
    if as_json:
        emit(report)
    else:
        print_summary(report)


def summary(peek: Peek, corpus_id: int) -> dict[str, Any]:
    """Counts of turns, episodes and entities, and the embedder in use."""
    from peek.memory.embed import active_embedder_name
    from peek.memory.invalidation import stale_summary

    episodes = peek.memory_episodes()
    return {"corpus": str(peek.root), "embedder": active_embedder_name(),
            "episodes": len(episodes), "windows": sum(e.size for e in episodes),
            "entities": len(peek.memory_entities()),
            "stale": stale_summary(peek.db, corpus_id),
            "forgotten": len(peek.memory_forgotten())}


def print_summary(report: dict[str, Any]) -> None:
    """The summary as a few lines."""
    print(f"{report['corpus']}: {report['episodes']} episodes over {report['windows']} windows, "
          f"{report['entities']} entities (embedder: {report['embedder']})")
    stale = report["stale"]
    if stale["turns"] or stale["nodes"]:
        print(f"stale: {stale['turns']} turns, {stale['nodes']} workspace nodes cite changed code")
    if report["forgotten"]:
        print(f"{report['forgotten']} turns forgotten (`peek memory forgotten` lists them)")


@memory_app.command("ingest")
def ingest(corpus: CorpusArg,
           file: Annotated[Path, typer.Argument(help="A .jsonl conversation log (one turn per "
                                                "line) or a text document.")],
           home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Remember a conversation log or a document (turns already remembered are skipped)."""
    with opened(corpus, home) as (peek, _cid):
        done = peek.memory_ingest(file)
    if as_json:
        emit({"file": str(file), **done.to_dict()})
    else:
        print(f"{file}: {done.added} turns remembered, {done.skipped} already known; "
              f"{done.episodes} episodes over {done.windows} windows")


@memory_app.command("search")
def search(corpus: CorpusArg,
           query: Annotated[str, typer.Argument(help="A question or words to look for.")],
           k: Annotated[int, typer.Option("-k", "--top", help="How many items at most.")] = 10,
           budget: Annotated[int, typer.Option("--budget", help="Token budget of the block.")
                             ] = 2000,
           home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Ranked memory items for a question, each naming its source turns, within a budget."""
    with opened(corpus, home) as (peek, _cid):
        found = peek.memory_search(query, k, budget)  # the same checks and bounds as MCP
    if as_json:
        emit(found.to_dict())
        return
    for hit in found.results:
        episode = "-" if hit.episode is None else hit.episode
        print(f"{hit.score:8.3f}  e{episode}  {hit.text}")
    print(f"({len(found.results)} items, {found.tokens} tokens"
          + ("; memory knows none of the names in the question" if found.abstained else "") + ")")


@memory_app.command("episodes")
def episodes(corpus: CorpusArg, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """The episodes: windows in each, block tokens and the sha256 of each block."""
    with opened(corpus, home) as (peek, _cid):
        listed = peek.memory_episodes()
    if as_json:
        emit({"episodes": [e.to_dict() for e in listed]})
        return
    for e in listed:
        print(f"episode {e.id}: {e.size} windows, {e.tokens} tokens, "
              f"sha256 {e.prefix_sha256[:16]}")
    if not listed:
        print("(no episodes yet: ingest a conversation or record a session)")


@memory_app.command("entities")
def entities(corpus: CorpusArg,
             limit: Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")
                              ] = 50,
             home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """The workspace's entities, most mentioned first."""
    with opened(corpus, home) as (peek, _cid):
        listed = peek.memory_entities()
    if as_json:
        emit({"entities": [e.to_dict() for e in listed[:limit]]})
        return
    for e in listed[:limit]:
        mark = " (stale)" if e.stale else ""
        print(f"{e.id:>8}  {e.kind:<7} {e.name}{mark}  ·  {e.mentions} mentions, "
              f"{e.first} … {e.last}")
    if not listed:
        print("(no entities yet)")


@memory_app.command("forget")
def forget(corpus: CorpusArg,
           turn_ids: Annotated[list[str] | None, typer.Argument(
               help="Ids of the turns to forget (`peek memory search` shows them in "
                    "brackets).", show_default=False)] = None,
           session: Annotated[list[str] | None, typer.Option(
               "--session", help="Forget every turn of this session (repeatable).",
               show_default=False)] = None,
           reason: Annotated[str | None, typer.Option(
               "--reason", help="Why, kept in the log (`peek memory forgotten`).")] = None,
           home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Forget turns and everything derived from them; the log keeps a sha256, never the text."""
    with opened(corpus, home) as (peek, _cid):
        done = peek.memory_forget(turn_ids or [], session or [], reason)
    if as_json:
        emit(done.to_dict())
        return
    damaged = f" ({len(done.damaged)} unreadable)" if done.damaged else ""
    print(f"forgot {len(done.turns)} turns{damaged}: {done.windows_removed} windows removed, "
          f"{done.windows_changed} re-embedded, {len(done.episodes_rebuilt)} episodes rebuilt, "
          f"{len(done.episodes_removed)} removed; workspace: {done.nodes_removed} nodes "
          f"removed, {done.nodes_changed} rewritten")


@memory_app.command("forgotten")
def forgotten(corpus: CorpusArg, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """The log of forgotten turns: id, session, when, why and a sha256 of the text."""
    import time

    with opened(corpus, home) as (peek, _cid):
        listed = peek.memory_forgotten()
    if as_json:
        emit({"forgotten": [f.to_dict() for f in listed]})
        return
    for f in listed:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(f.forgotten_at))
        digest = f.text_sha256[:16] if f.text_sha256 else "(unreadable)"
        why = f"  ·  {f.reason}" if f.reason else ""
        print(f"{when}  {f.turn_id}  session {f.session or '-'}  sha256 {digest}{why}")
    if not listed:
        print("(nothing forgotten)")
