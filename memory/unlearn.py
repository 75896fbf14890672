"""Taking forgotten turns back out of the GSW workspace (`peek memory forget`).

Every piece of workspace evidence is stamped with its source: a role, a verb and each of its
questions, a space/time name (`name_history`). A source is a turn id (the deterministic
Operators: a conversation turn, a document paragraph, a code session `session:ID`), or
`NAME#N` for the LLM Operator's chunks of a whole session NAME (its text mixes every turn of
that batch, so forgetting any turn of NAME takes all of NAME's LLM evidence: no per-turn
provenance exists there).

What goes: every role, space/time name and verb question stamped with a forgotten source
that carries text (a verb question with a `TEXT:` answer); a verb with no other source; an
entity or space/time node left with no evidence of its own and named by no remaining verb.
What stays: items other sources support, minus the forgotten source's stamps; a merged verb's
entity-only questions (merging keeps one copy of a question two sources both said, stamped
with the first). An entity's name and kind are the first mention's and stay when others
mention it too (an exact or near-identical name, since that is how entities merge).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from peek.db import driver
from peek.memory import fts
from peek.memory.models import NONE_ANSWER, TEXT_PREFIX, Entity, SpaceTimeNode, VerbPhrase
from peek.memory.store import Node, node_from_json, save_nodes
from peek.packed import unpack_text

if TYPE_CHECKING:
    from peek.db import AnyConnection

_CHUNK = re.compile(r"(.*)#\d+")


@dataclass
class Unlearned:
    """What forgetting took out of the workspace: node ids removed, nodes rewritten."""

    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


class Sources:
    """Which evidence stamps belong to the forgotten turns."""

    def __init__(self, turn_ids: Iterable[str], sessions: Iterable[str],
                 kept_ids: set[str]) -> None:
        self.turns = set(turn_ids)
        self.sessions = set(sessions)
        self.kept_ids = kept_ids  # stored turns that stay: a turn id that looks like a chunk

    def gone(self, source: str) -> bool:
        """Whether a stamp came from a forgotten turn (or an LLM chunk of its session)."""
        if source in self.turns:
            return True
        chunk = _CHUNK.fullmatch(source)
        return chunk is not None and chunk.group(1) in self.sessions and (
            source not in self.kept_ids)

    def needles(self) -> re.Pattern[str]:
        """A pattern that every stored node stamped by these sources matches (a cheap filter
        before parsing): the JSON string of a turn id, or of a session name followed by #."""
        parts = [re.escape(json.dumps(t)) for t in sorted(self.turns)]
        parts += [re.escape(json.dumps(s)[:-1] + "#") for s in sorted(self.sessions)]
        return re.compile("|".join(parts))


def forget_sources(conn: AnyConnection, corpus_id: int, sources: Sources) -> Unlearned:
    """Remove the forgotten sources' evidence from the workspace (inside the caller's write
    transaction); returns what was removed and rewritten."""
    touched = _touched_nodes(conn, corpus_id, sources)
    if not touched:
        return Unlearned()
    verbs = {n.id: n for n in touched if isinstance(n, VerbPhrase)}
    others = {n.id: n for n in touched if not isinstance(n, VerbPhrase)}
    kept_verbs = {i: v for i, v in verbs.items() if _strip_verb(v, sources.gone)}
    bare = [i for i, n in others.items() if not _strip_node(n, sources.gone)]
    support = _support(conn, corpus_id, bare, set(verbs), kept_verbs.values(), sources.gone)
    removed = set(verbs) - set(kept_verbs) | {i for i in bare if not support.get(i)}
    kept = [*kept_verbs.values(), *(n for i, n in others.items() if i not in removed)]
    for node in kept:
        _drop_links(node, removed, sources.gone)
    _restamp(conn, corpus_id, kept, sources.gone, support)
    _delete(conn, corpus_id, sorted(removed), [i for i in verbs if i in removed])
    save_nodes(conn, corpus_id, kept)
    return Unlearned(sorted(removed), sorted(n.id for n in kept))


def _touched_nodes(conn: AnyConnection, corpus_id: int, sources: Sources) -> list[Node]:
    """The stored nodes that hold any stamp of the forgotten sources."""
    pattern = sources.needles()
    rows = driver(conn).execute("SELECT kind, data FROM memory_nodes WHERE corpus_id = ?",
                                (corpus_id,))
    found = []
    for kind, data in rows:
        text = unpack_text(data)
        if pattern.search(text):
            node = node_from_json(kind, data)
            if any(sources.gone(s) for s in _stamps(node)):
                found.append(node)
    return found


def _stamps(node: Node) -> list[str]:
    if isinstance(node, Entity):
        return [node.source, *(r.source for r in node.roles)]
    if isinstance(node, VerbPhrase):
        return [node.source, *(q.source for q in node.questions)]
    return [node.source, *node.name_history]


def _question_source(verb: VerbPhrase, source: str) -> str:
    return source or verb.source  # a question stamped before questions carried a source


def _strip_verb(verb: VerbPhrase, gone: Callable[[str], bool]) -> bool:
    """Drop a verb's forgotten questions that carry text; False when no other source is left
    (the verb goes)."""
    own = [q for q in verb.questions if gone(_question_source(verb, q.source))]
    others = [q for q in verb.questions if q not in own]
    if gone(verb.source) and not others:
        return False
    verb.questions = others + [q for q in own if not any(
        a.startswith(TEXT_PREFIX) for a in q.answers)]
    return True


def _strip_node(node: Node, gone: Callable[[str], bool]) -> bool:
    """Drop an entity's forgotten roles or a place/time's forgotten names; whether any of its
    own evidence is left (a role or name of another source, or a first source kept)."""
    if isinstance(node, Entity):
        node.roles = [r for r in node.roles if not gone(r.source)]
        return bool(node.roles) or not gone(node.source)
    assert isinstance(node, SpaceTimeNode)
    node.name_history = {s: n for s, n in node.name_history.items() if not gone(s)}
    if node.name_history:
        node.current_name = list(node.name_history.values())[-1]
    return bool(node.name_history) or not gone(node.source)


def _support(conn: AnyConnection, corpus_id: int, ids: list[str], touched_verbs: set[str],
             kept_verbs: Iterable[VerbPhrase], gone: Callable[[str], bool],
             ) -> dict[str, list[str]]:
    """For nodes left without evidence of their own: the remaining verbs that name them in
    questions of a remaining source."""
    if not ids:
        return {}
    wanted = set(ids)
    found: dict[str, list[str]] = {}
    rows = driver(conn).execute(
        "SELECT node_id, verb_id FROM memory_edges WHERE corpus_id = ? AND node_id IN "
        "(SELECT value FROM json_each(?)) ORDER BY seq, verb_id", (corpus_id, json.dumps(ids)))
    for node_id, verb_id in rows:
        if verb_id not in touched_verbs:
            found.setdefault(node_id, []).append(verb_id)
    for verb in kept_verbs:
        said = {a for q in verb.questions if not gone(_question_source(verb, q.source))
                for a in q.answers}
        for answer in said & wanted:
            found.setdefault(answer, []).append(verb.id)
    return found


def _drop_links(node: Node, removed: set[str], gone: Callable[[str], bool]) -> None:
    """Remove answers and links that name removed nodes: a question so emptied goes when a
    forgotten source asked it, and is open again otherwise."""
    if isinstance(node, VerbPhrase):
        kept = []
        for q in node.questions:
            left = [a for a in q.answers if a not in removed]
            if len(left) < len(q.answers):
                if not left and gone(_question_source(node, q.source)):
                    continue
                q.answers = left or [NONE_ANSWER]
            kept.append(q)
        node.questions = kept
    elif isinstance(node, SpaceTimeNode):
        node.entity_ids = [e for e in node.entity_ids if e not in removed]


def _restamp(conn: AnyConnection, corpus_id: int, nodes: list[Node], gone: Callable[[str], bool],
             support: dict[str, list[str]]) -> None:
    """A kept node whose first source was forgotten takes its earliest remaining one, and so
    do a kept verb's questions stamped with a forgotten source."""
    restamped = [n for n in nodes if gone(n.source)]
    for node in restamped:
        if isinstance(node, Entity) and node.roles:
            first = min(node.roles, key=lambda r: (r.seq, r.source))
            node.source, node.seq = first.source, first.seq
        elif isinstance(node, VerbPhrase):
            node.source = next(_question_source(node, q.source) for q in node.questions
                               if not gone(_question_source(node, q.source)))
        elif isinstance(node, SpaceTimeNode) and node.name_history:
            node.source = next(iter(node.name_history))
        else:
            node.source = _verb_source(conn, corpus_id, support.get(node.id, []), gone)
    _reseq(conn, corpus_id, [n for n in restamped if isinstance(n, VerbPhrase | SpaceTimeNode)])
    for verb in (n for n in nodes if isinstance(n, VerbPhrase)):
        for q in verb.questions:  # a kept question two sources said: now the remaining one's
            if gone(_question_source(verb, q.source)):
                q.source = verb.source


def _verb_source(conn: AnyConnection, corpus_id: int, verb_ids: list[str],
                 gone: Callable[[str], bool]) -> str:
    """The source of the earliest verb naming a node (what supports it now)."""
    from peek.memory.store import nodes_by_id

    verbs = sorted((v for v in nodes_by_id(conn, corpus_id, verb_ids[:50])
                    if isinstance(v, VerbPhrase) and not gone(v.source)),
                   key=lambda v: (v.seq, v.id))
    return verbs[0].source if verbs else ""


def _reseq(conn: AnyConnection, corpus_id: int, nodes: list[VerbPhrase | SpaceTimeNode]) -> None:
    """Move restamped nodes to their new source's position when that source is a turn."""
    by_source = {n.source for n in nodes}
    if not by_source:
        return
    rows = driver(conn).execute(
        "SELECT turn_id, seq FROM memory_turns WHERE corpus_id = ? AND turn_id IN "
        "(SELECT value FROM json_each(?))", (corpus_id, json.dumps(sorted(by_source))))
    seqs = {r[0]: int(r[1]) for r in rows}
    for node in nodes:
        node.seq = seqs.get(node.source, node.seq)


def _delete(conn: AnyConnection, corpus_id: int, ids: list[str], verb_ids: list[str]) -> None:
    """Delete nodes, their edges and their verb documents."""
    if not ids:
        return
    raw = driver(conn)
    rebuild = not fts.unindex_verbs(raw, corpus_id, verb_ids)
    listed = json.dumps(ids)
    for column in ("verb_id", "node_id"):
        raw.execute(f"DELETE FROM memory_edges WHERE corpus_id = ? AND {column} IN "
                    "(SELECT value FROM json_each(?))", (corpus_id, listed))
    raw.execute("DELETE FROM memory_nodes WHERE corpus_id = ? AND id IN "
                "(SELECT value FROM json_each(?))", (corpus_id, listed))
    if rebuild:
        fts.rebuild_verb_index(raw, corpus_id)
