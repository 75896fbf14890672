"""Serving memory: ranked turns, entity summaries and the routed episode, within a token budget.

`memory_search` ranks turns (see `search.py`) and abstains (no results) when the question names
something memory has never seen: EpBench's probes about absent people then get nothing rather
than a confident neighbour. `memory_block` is what an agent's system prompt receives: the
routed episode's byte-stable block, then GSW entity summaries (the question's entities matched,
their evidence sorted chronologically, lines reranked by relevance), then the best turns, never
more than the budget.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peek.memory import fts
from peek.memory.episodes import route
from peek.memory.models import NONE_ANSWER, TEXT_PREFIX, Entity, VerbPhrase
from peek.memory.search import MemoryIndex, Ranked, memory_index, rank_turns
from peek.memory.store import TurnRecord, load_nodes
from peek.memory.text import name_words, norm_name, proper_names
from peek.text import ANALYSIS, terms
from peek.tokens import count_tokens

if TYPE_CHECKING:
    from peek.db import Database

RESULT_CHARS = 1000
SEARCH_HEADER = "## Memory: turns that match the question\n"
ENTITY_HEADER = "## Memory: what is known about the question's entities\n"
MAX_SUMMARIES = 17
LINES_PER_ENTITY = 8
MIN_NAME_CHARS = 3
ROUTE_HITS = 10


@dataclass
class MemoryHit:
    """One ranked memory item and the source turns it draws on."""

    turn_ids: list[str]
    text: str
    episode: int | None
    score: float

    def to_dict(self) -> dict[str, Any]:
        """The contract shape of one result."""
        return {"turn_ids": self.turn_ids, "text": self.text, "episode": self.episode,
                "score": round(self.score, 4)}


@dataclass
class MemorySearch:
    """Ranked items and the token size of the block an agent would receive."""

    results: list[MemoryHit] = field(default_factory=list)
    tokens: int = 0
    abstained: bool = False

    def block(self) -> str:
        """The text an agent receives for these results."""
        return render_hits(self.results)

    def to_dict(self) -> dict[str, Any]:
        """`{"results": [...], "tokens": int}` (the `peek memory search --json` contract)."""
        return {"results": [r.to_dict() for r in self.results], "tokens": self.tokens}


def render_hits(hits: list[MemoryHit]) -> str:
    """The search block: a header and one line per item ('' when there is nothing)."""
    return SEARCH_HEADER + "".join(h.text + "\n" for h in hits) if hits else ""


def memory_search(db: Database, corpus_id: int, query: str, k: int = 10,
                  budget: int = 2000) -> MemorySearch:
    """The k best remembered turns for a query whose block fits in `budget` tokens."""
    if not query.strip():
        return MemorySearch()
    _ensure_indexed(db, corpus_id)
    with db.query() as conn:
        index = memory_index(conn, db.path, corpus_id)
        if index is None or not index.size:
            return MemorySearch()
        if abstains(index, query):
            return MemorySearch(abstained=True)
        hits = _hits(index, rank_turns(index, query, k))
    kept = fit_hits(hits, budget)
    return MemorySearch(kept, count_tokens(render_hits(kept)))


def _ensure_indexed(db: Database, corpus_id: int) -> None:
    """Build the full-text indexes of memory written before they existed, and re-derive terms
    a different text analysis made (once per store)."""
    with db.query() as conn:
        row = conn.execute("SELECT analysis FROM memory_state WHERE corpus_id = ?",
                           (corpus_id,)).fetchone()
        indexed = row is None or fts.exists(conn, corpus_id)
    if row is not None and row[0] != ANALYSIS:
        from peek.memory.pipeline import reanalyze  # rare; the write path's imports

        with db.write() as sa_conn:
            reanalyze(sa_conn, corpus_id)
    elif not indexed:
        with db.raw_write() as conn:
            fts.ensure_indexed(conn, corpus_id)


def _hits(index: MemoryIndex, ranked: list[Ranked]) -> list[MemoryHit]:
    records = stale_now(index.conn, index.corpus_id, index.records([r.row_id for r in ranked]))
    episodes = index.episodes_of_windows(sorted({t.window for t in records.values()}))
    hits = []
    for r in ranked:
        turn = records[r.row_id]
        hits.append(MemoryHit([turn.turn_id], turn.line(RESULT_CHARS),
                              episodes.get(turn.window), r.score))
    return hits


def stale_now(conn: Any, corpus_id: int,
              records: dict[int, TurnRecord]) -> dict[int, TurnRecord]:
    """Staleness computed on read, for the turns about to be served: a turn whose cited files
    changed on disk since it was remembered is served marked stale, before the next index
    persists the mark (nothing is written here)."""
    if not any(t.blobs and not t.stale for t in records.values()):
        return records
    row = conn.execute("SELECT root FROM corpora WHERE id = ?", (corpus_id,)).fetchone()
    root = Path(row[0]) if row else None
    if root is None or not root.is_dir():
        return records
    from peek.blobs import working_tree_sha

    now: dict[str, str | None] = {}

    def changed(path: str, sha: str) -> bool:
        if path not in now:
            now[path] = working_tree_sha(path, root)
        return now[path] != sha

    return {rid: replace(t, stale=True) if t.blobs and not t.stale and any(
        changed(p, sha) for p, sha in t.blobs.items()) else t for rid, t in records.items()}


def fit_hits(hits: list[MemoryHit], budget: int) -> list[MemoryHit]:
    """The leading hits whose rendered block stays within `budget` tokens (skipping long ones)."""
    kept: list[MemoryHit] = []
    used = count_tokens(SEARCH_HEADER)
    for hit in hits:
        cost = count_tokens(hit.text + "\n")
        if used + cost <= budget:
            kept.append(hit)
            used += cost
    return kept


# --- which names a question mentions ----------------------------------------------------------


def question_names(question: str) -> list[str]:
    """The proper names a question mentions."""
    return [n for n in proper_names(question) if len(norm_name(n)) >= MIN_NAME_CHARS]


def strict_match(name: str, entity_name: str) -> bool:
    """Same name, one contained in the other, or every word of `name` in the entity's name."""
    a, b = norm_name(name), norm_name(entity_name)
    if not a or not b:
        return False
    if a == b or (len(a) >= 4 and a in b) or (len(b) >= 4 and b in a):
        return True
    words = name_words(name)
    return bool(words) and words <= name_words(entity_name)


def abstains(index: MemoryIndex, question: str) -> bool:
    """True when the question names things and memory knows none of them: no entity matches
    and no turn (with its neighbours) contains all the words of any of the names."""
    names = question_names(question)
    if not names:
        return False
    known = [n for _, n, _ in index.entity_names] + list(index.speakers)
    if any(strict_match(q, k) for q in names for k in known):
        return False
    return not any(_cooccur(index, terms(q)) for q in names)


def _cooccur(index: MemoryIndex, words: list[str]) -> bool:
    """Whether one indexed turn-in-context holds every word."""
    return index.cooccur(words)


# --- entity summaries (GSW query) ---------------------------------------------------------------


@dataclass
class Evidence:
    """One chronological line of an entity summary."""

    seq: int
    source: str
    text: str
    stale: bool


@dataclass
class Catalog:
    """The part of the workspace a summary reads: the question's entities, the verbs about them
    that can matter (those sharing a question term, and the newest), and the names they cite."""

    entities: dict[str, Entity]
    verbs_of: dict[str, list[VerbPhrase]]
    names: dict[str, str]


NEWEST_VERBS = 64


def catalog(index: MemoryIndex, entity_ids: list[str], question_terms: set[str]) -> Catalog:
    """Load the question's entities and the verbs their summaries can show, by indexed rows."""
    conn, cid = index.conn, index.corpus_id
    entities = {n.id: n for n in _nodes(index, entity_ids) if isinstance(n, Entity)}
    verbs_of: dict[str, list[VerbPhrase]] = {}
    for eid in entities:
        ids = _relevant_verbs(index, eid, question_terms)
        verbs_of[eid] = [v for v in _nodes(index, ids) if isinstance(v, VerbPhrase)]
    cited = sorted({a for vs in verbs_of.values() for v in vs for q in v.questions
                    for a in q.answers if a != NONE_ANSWER and not a.startswith(TEXT_PREFIX)})
    rows = conn.execute("SELECT id, name FROM memory_nodes WHERE corpus_id = ? AND id IN "
                        "(SELECT value FROM json_each(?))", (cid, json.dumps(cited)))
    return Catalog(entities, verbs_of, {r[0]: r[1] for r in rows})


def _relevant_verbs(index: MemoryIndex, entity_id: str, question_terms: set[str]) -> list[str]:
    """Verbs answering with the entity that share a question term, and its newest verbs."""
    conn, cid = index.conn, index.corpus_id
    newest = [r[0] for r in conn.execute(
        "SELECT verb_id FROM memory_edges WHERE corpus_id = ? AND node_id = ? "
        "ORDER BY seq DESC LIMIT ?", (cid, entity_id, NEWEST_VERBS))]
    if not question_terms:
        return newest
    words = sorted(question_terms)
    matching = [r[0] for r in conn.execute(
        f"SELECT n.id FROM memory_nodes n JOIN memory_edges e ON e.corpus_id = n.corpus_id "
        f"AND e.verb_id = n.id WHERE n.corpus_id = ? AND e.node_id = ? AND "
        f"{fts.verbs_matching(conn, cid, words)}",
        (cid, entity_id, fts.verb_match_param(conn, words)))]
    return list(dict.fromkeys(newest + matching))


def _nodes(index: MemoryIndex, ids: list[str]) -> list[Any]:
    from peek.memory.store import node_from_json

    rows = index.conn.execute(
        "SELECT kind, data FROM memory_nodes WHERE corpus_id = ? AND id IN "
        "(SELECT value FROM json_each(?))", (index.corpus_id, json.dumps(ids)))
    return [node_from_json(k, d) for k, d in rows]


def matched_ids(index: MemoryIndex, question: str) -> list[str]:
    """Ids of the entities the question names (strictly first, then by shared words)."""
    names = question_names(question) + [w for w in question.split() if "/" in w or "." in w]
    words = name_words(question)
    strict, loose = [], []
    for eid, name, _ in index.entity_names:
        if any(strict_match(q, name) for q in names):
            strict.append(eid)
        elif name_words(name) and name_words(name) <= words:
            loose.append(eid)
    return (strict + loose)[:MAX_SUMMARIES]


def matched_entities(index: MemoryIndex, cat: Catalog, question: str) -> list[Entity]:
    """Entities the question names (strictly first, then by shared words), at most 17."""
    return [cat.entities[e] for e in matched_ids(index, question) if e in cat.entities]


def entity_evidence(entity: Entity, cat: Catalog) -> list[Evidence]:
    """Roles, states and actions of an entity, one line per source, chronological."""
    lines = [Evidence(r.seq, r.source, f"{r.role}" + (f": {', '.join(r.states)}"
                                                       if r.states else ""), r.stale)
             for r in entity.roles]
    lines += [Evidence(v.seq, v.source, _verb_text(v, cat), v.stale)
              for v in cat.verbs_of.get(entity.id, [])]
    return sorted(lines, key=lambda e: (e.seq, e.source, e.text))


def _verb_text(verb: VerbPhrase, cat: Catalog) -> str:
    parts = []
    for q in verb.questions:
        answers = [_answer(a, cat) for a in q.answers if a != NONE_ANSWER]
        if answers:
            parts.append(f"{q.text} {', '.join(answers)}")
    return f"{verb.phrase} — " + "; ".join(parts)


def _answer(answer: str, cat: Catalog) -> str:
    if answer.startswith(TEXT_PREFIX):
        return answer.removeprefix(TEXT_PREFIX)
    return cat.names.get(answer, answer)


def entity_summary(entity: Entity, cat: Catalog, question_terms: set[str], index: MemoryIndex,
                   budget: int) -> str:
    """A chronological summary of the entity's most relevant evidence, within `budget` tokens."""
    evidence = entity_evidence(entity, cat)
    scored = sorted(range(len(evidence)), key=lambda i: (
        -_relevance(evidence[i].text, question_terms, index), -evidence[i].seq))
    keep = sorted(scored[:LINES_PER_ENTITY])
    head = f"### {entity.name} ({entity.kind})\n"
    out, used = [head], count_tokens(head)
    for i in keep:
        e = evidence[i]
        line = f"- [{e.source}] {e.text}" + (" (stale: re-check)" if e.stale else "") + "\n"
        cost = count_tokens(line)
        if used + cost <= budget:
            out.append(line)
            used += cost
    return "".join(out) if len(out) > 1 else ""


def _relevance(text: str, question_terms: set[str], index: MemoryIndex) -> float:
    return sum(index.idf(t) for t in set(terms(text)) & question_terms)


def entity_block(index: MemoryIndex, question: str, budget: int) -> str:
    """Summaries of the question's entities, reranked by relevance, within `budget` tokens."""
    q_terms = set(terms(question))
    index.prefetch_idf(sorted(q_terms))
    cat = catalog(index, matched_ids(index, question), q_terms)
    entities = matched_entities(index, cat, question)
    scored = sorted(entities, key=lambda e: -_relevance(
        " ".join(ev.text for ev in entity_evidence(e, cat)[-50:]), q_terms, index))
    out, used = [ENTITY_HEADER], count_tokens(ENTITY_HEADER)
    for entity in scored:
        summary = entity_summary(entity, cat, q_terms, index, budget - used)
        cost = count_tokens(summary)
        if summary and used + cost <= budget:
            out.append(summary)
            used += cost
    return "".join(out) if len(out) > 1 else ""


# --- the block for an agent's prompt -----------------------------------------------------------


def centroid_episode(index: MemoryIndex, question: str) -> int | None:
    """EpiCache's routing: the episode whose raw centroid is nearest the question's vector."""
    if not index.episodes:
        return None
    vector = index.embedder.embed([question])[0]
    return route(vector, index.episodes, index.dim)


def routed_episode(index: MemoryIndex, question: str,
                   ranked: list[Ranked] | None = None) -> int | None:
    """The episode holding most of the question's best turns (score-weighted), else the nearest
    centroid. A short question's lexical vector is a noisy probe of a centroid; its ranked turns
    are not."""
    ranked = rank_turns(index, question, ROUTE_HITS) if ranked is None else ranked[:ROUTE_HITS]
    records = index.records([r.row_id for r in ranked])
    windows = index.episodes_of_windows(sorted({t.window for t in records.values()}))
    votes: dict[int, float] = {}
    for r in ranked:
        episode = windows.get(records[r.row_id].window)
        if episode is not None:
            votes[episode] = votes.get(episode, 0.0) + r.score
    if votes:
        return min(votes, key=lambda e: (-votes[e], e))
    return centroid_episode(index, question)


def memory_block(db: Database, corpus_id: int, question: str, budget: int) -> str:
    """Routed episode block + entity summaries + best turns, never more than `budget` tokens."""
    if budget <= 0:
        return ""
    _ensure_indexed(db, corpus_id)
    with db.query() as conn:
        index = memory_index(conn, db.path, corpus_id)
        if index is None or not index.size:
            return ""
        ranked = rank_turns(index, question, max(ROUTE_HITS, 10))
        parts = [_episode_prefix(index, question, budget, ranked)]
        remaining = budget - _tokens(parts)
        parts.append(entity_block(index, question, remaining // 2))
        hits = [] if abstains(index, question) else _hits(index, ranked[:10])
    remaining = budget - _tokens(parts)
    parts.append(render_hits(fit_hits(hits, remaining - 2)))
    return _within("\n".join(p for p in parts if p), budget)


def _episode_prefix(index: MemoryIndex, question: str, budget: int,
                    ranked: list[Ranked]) -> str:
    eid = routed_episode(index, question, ranked)
    episode = next((e for e in index.episodes if e.id == eid), None)
    return episode.prefix if episode is not None and episode.tokens <= budget else ""


def _tokens(parts: list[str]) -> int:
    return count_tokens("\n".join(p for p in parts if p))


def _within(text: str, budget: int) -> str:
    """Drop trailing lines until the block fits (joins can add a token or two)."""
    lines = text.splitlines(keepends=True)
    while lines and count_tokens("".join(lines)) > budget:
        lines.pop()
    return "".join(lines)


# --- listings ------------------------------------------------------------------------------


def list_episodes(db: Database, corpus_id: int) -> list[dict[str, Any]]:
    """Every episode: id, windows, block tokens and the sha256 of its block."""
    from peek.memory.store import load_episodes

    with db.read() as conn:
        episodes = load_episodes(conn, corpus_id)
    return [{"id": e.id, "size": e.size, "tokens": e.tokens, "prefix_sha256": e.prefix_sha256}
            for e in episodes]


def episode_prefix(db: Database, corpus_id: int, episode_id: int) -> str | None:
    """One episode's block, byte for byte."""
    from peek.memory.store import load_episodes

    with db.read() as conn:
        found = [e for e in load_episodes(conn, corpus_id) if e.id == episode_id]
    return found[0].prefix if found else None


def list_entities(db: Database, corpus_id: int) -> list[dict[str, Any]]:
    """Every entity with its kind, how many sources mention it, first and last, staleness."""
    with db.read() as conn:
        entities = [n for n in load_nodes(conn, corpus_id, "entity") if isinstance(n, Entity)]
    rows = [_entity_row(e) for e in entities]
    return sorted(rows, key=lambda r: (-r["mentions"], r["name"].lower(), r["id"]))


def _entity_row(entity: Entity) -> dict[str, Any]:
    sources = sorted({(r.seq, r.source) for r in entity.roles})
    return {"id": entity.id, "name": entity.name, "kind": entity.kind,
            "roles": sorted({r.role for r in entity.roles}),
            "mentions": len(sources) + entity.folded,
            "first": sources[0][1] if sources else entity.source,
            "last": sources[-1][1] if sources else entity.source,
            "stale": bool(entity.roles) and all(r.stale for r in entity.roles)}
