"""Bootstrap: seed a new map's CONTEXT ROADMAP from the corpus layout and its central code.

A cold map would make the first sessions orient from scratch. The layout (top-level folders,
their size and languages) and the files and symbols that the most other files lean on (PageRank
over the import/reference graph, aider's repo-map idea) are the orientation every question
needs, and they cost no model call. Seeds fill at most half the budget, leaving the rest to what
sessions teach; they start with score 0 and are the oldest entries, so learned knowledge that
proves helpful displaces them first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, select

from peek.contextmap.freshness import CorpusView
from peek.contextmap.model import Anchor, Entry, make_id
from peek.contextmap.render import render_entries
from peek.contextmap.store import ChangeSet, MapStore, load_map
from peek.contextmap.tokens import exact_tokens
from peek.db import Database
from peek.retrieval.graph import FileGraph, load_graph
from peek.schema import File

MAX_DIRS = 6
MAX_FILES = 24
MAX_NAMES = 4


@dataclass(frozen=True)
class Seed:
    """A proposed roadmap line and its anchors."""

    text: str
    anchors: tuple[Anchor, ...] = ()


@dataclass(frozen=True)
class BootstrapResult:
    """What seeding did: the ids added, the map's version and tokens afterwards."""

    added: tuple[str, ...]
    version: int
    tokens: int
    skipped: bool = False


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def layout_seed(files: list[tuple[str, str]]) -> Seed | None:
    """One line naming the top-level folders with their file counts and main languages."""
    if not files:
        return None
    groups: dict[str, Counter[str]] = {}
    for path, language in files:
        top = path.split("/", 1)[0] + "/" if "/" in path else "."
        groups.setdefault(top, Counter())[language] += 1
    ranked = sorted(groups.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    parts = []
    for top, langs in ranked[:MAX_DIRS]:
        main = ", ".join(lang for lang, _ in langs.most_common(2))
        where = "top level" if top == "." else top
        parts.append(f"{where} ({_files(sum(langs.values()))}: {main})")
    more = f"; {len(ranked) - MAX_DIRS} more folders" if len(ranked) > MAX_DIRS else ""
    return Seed(f"Layout: {'; '.join(parts)}{more}")


def central_seeds(graph: FileGraph, view: CorpusView, limit: int = MAX_FILES) -> list[Seed]:
    """Per central file: the names others use most, as `names: path (used by N files)`."""
    ranks = graph.ranks()
    names: dict[str, list[str]] = {}
    for sym in graph.top_symbols(k=limit * 8, ranks=ranks):
        bucket = names.setdefault(sym.path, [])
        if sym.name not in bucket and len(bucket) < MAX_NAMES:
            bucket.append(sym.name)
    used_by = graph.in_degree()
    seeds = []
    for path, _ in graph.top_files(limit, ranks):
        if used_by[path] == 0 or path not in names:
            continue
        blob = view.current_blob(path)
        anchors = (Anchor(path, 1, view.line_count(path), blob),) if blob else ()
        text = f"{', '.join(names[path])}: {path} (used by {_files(used_by[path])})"
        seeds.append(Seed(text, anchors))
    return seeds


def plan_seeds(conn: Connection, corpus_id: int, root: Path | None,
               graph: FileGraph | None = None) -> list[Seed]:
    """Layout first, then central files in rank order (over `graph` when the caller has it)."""
    files = [(p, lang) for p, lang in conn.execute(
        select(File.path, File.language).where(File.corpus_id == corpus_id).order_by(File.path))]
    view = CorpusView(conn, corpus_id, root)
    view.prefetch(p for p, _ in files)
    layout = layout_seed(files)
    graph = load_graph(conn, corpus_id) if graph is None else graph
    return ([layout] if layout else []) + central_seeds(graph, view)


def add_within(cs: ChangeSet, seeds: list[Seed], limit: int) -> list[str]:
    """Add seeds in order while the whole rendered map stays within `limit` tokens."""
    added: list[str] = []
    for seed in seeds:
        trial = Entry(make_id("cr", cs.map.state.next_id("cr")), "cr", seed.text,
                      anchors=seed.anchors)
        if exact_tokens(render_entries([*cs.map.entries.values(), trial])) > limit:
            continue
        step = cs.map.state.updates
        added.append(cs.add("cr", seed.text, seed.anchors, step=step, op="SEED",
                            reason="bootstrap").id)
    return added


def bootstrap_map(db: Database, corpus_id: int, root: Path | None = None,
                  budget: int | None = None, *, force: bool = False,
                  graph: FileGraph | None = None) -> BootstrapResult:
    """Seed a never-seeded, empty map (or any map with `force`) up to half its budget; `graph`
    is the one the index just built (with symbols), so a first index builds it once."""
    with db.read() as conn:
        cmap = load_map(conn, corpus_id)
        if not force and (cmap.state.seeded or cmap.entries):
            return BootstrapResult((), cmap.state.version,
                                   exact_tokens(render_entries(cmap.entries.values())), True)
        seeds = plan_seeds(conn, corpus_id, root, graph)
    with MapStore(db, corpus_id).change("bootstrap") as cs:
        if budget is not None:
            cs.set_state(op="BUDGET", budget_tokens=budget, reason="budget set")
        added = add_within(cs, seeds, cs.map.state.budget_tokens // 2)
        cs.set_state(op="SEEDED", seeded=True, reason="bootstrap")
        version = cs.finish()
        tokens = exact_tokens(render_entries(cs.map.entries.values()))
    return BootstrapResult(tuple(added), version, tokens)
