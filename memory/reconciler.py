"""The Reconciler: merge each chunk's workspace into the corpus's memory, chunk by chunk.

Steps, as in GSW: globalize ids; resolve entities exactly (normalized name) and then by
embedding (faiss inner product over normalized vectors, top-k, never within the same chunk),
asking an LLM verifier when a model is configured and otherwise merging only near-identical
names; merge roles and states; merge space and time nodes by name; remap answers; merge verb
phrases (same phrase and a shared entity answer to a question with the same head); and fill the
open questions of matched entities' verbs from the new evidence.

Two deviations: verbs merge only when their TEXT answers agree (the phrase key digests them),
so two different statements of a speaker never fuse; and only when they have the same
participants (every shared question head but when/where overlaps), so a constant actor such
as the agent does not fuse every 'read' of every file into one verb.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from peek.db import driver
from peek.memory.models import (
    NONE_ANSWER,
    TEXT_PREFIX,
    Entity,
    Question,
    ResolutionOutput,
    Role,
    SpaceTimeNode,
    VerbPhrase,
    VerifierOutput,
)
from peek.memory.operator import Chunk
from peek.memory.store import (
    Node,
    State,
    entities_by_key,
    entity_vectors,
    node_key,
    open_verbs_about,
    pack,
    save_nodes,
    spacetime_by_key,
    verb_key,
    verbs_by_key,
)
from peek.memory.text import norm_name
from peek.packed import unpack_json

if TYPE_CHECKING:
    import numpy as np

    from peek.db import AnyConnection
    from peek.llmjson import JSONModel
    from peek.memory.embed import Embedder

log = logging.getLogger("peek.memory.reconciler")
TOP_K = 5
ROLE_CAP = 48
NAME_HISTORY_CAP = 16
AUTO_MERGE = 0.92
VERIFY_FLOOR = 0.5
EXACT_ONLY = frozenset({"file", "symbol", "config", "agent"})
VERIFIER_SYSTEM = (
    "For each numbered pair of entity descriptions, say whether both refer to the same (or a "
    "strongly related) real-world entity. Return JSON {\"same\": [true|false, ...]} with one "
    "boolean per pair, in order."
)
RESOLVER_SYSTEM = (
    "Some questions about earlier events are still unanswered. Answer those that the new text "
    "answers, and only those. Return JSON {\"answers\": [{\"question_id\", \"answer_text\", "
    "\"answer_entity_id\"}]}; answer_entity_id is one of the given entity ids or null."
)


class Reconciler:
    """Merges chunks into the stored workspace; call `flush()` to write the changed nodes."""

    def __init__(self, conn: AnyConnection, state: State, embedder: Embedder,
                 model: JSONModel | None = None) -> None:
        self.conn, self.state, self.embedder, self.model = conn, state, embedder, model
        self.nodes: dict[str, Node] = {}
        self.dirty: set[str] = set()
        self.keys: dict[str, str] = {}
        self.new_vectors: dict[str, bytes] = {}
        self._index: Any = None
        self._index_ids: list[str] = []
        self._index_sources: list[str] = []
        self._verb_keys: dict[str, list[str]] = {}
        self._roles: dict[str, dict[tuple[str, str], Role]] = {}
        self.merged = 0

    # --- ids ------------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        self.state.next_node += 1
        return f"{prefix}{self.state.next_node - 1}"

    def _touch(self, node: Node) -> None:
        if isinstance(node, VerbPhrase) and node.id not in self.dirty:
            self._verb_keys.setdefault(verb_key(node), []).append(node.id)
        self.nodes[node.id] = node
        self.dirty.add(node.id)

    # --- the reconcile step ---------------------------------------------------------------

    def reconcile(self, chunk: Chunk) -> dict[str, str]:
        """Merge one chunk; returns the map from its local ids to global ids."""
        ws = chunk.workspace
        ids = {e.id: self._new_id("e") for e in ws.entities}
        ids.update({v.id: self._new_id("v") for v in ws.verb_phrases})
        ids.update({n.id: self._new_id(n.kind[0]) for n in ws.space_time})
        matched = self._resolve_entities(chunk, ids)
        st_nodes = [self._merge_spacetime(n, ids) for n in ws.space_time]
        for verb in ws.verb_phrases:
            self._merge_verb(_remap_verb(verb, ids), matched)
        self._resolve_questions(chunk, matched, st_nodes)
        return ids

    def _resolve_entities(self, chunk: Chunk, ids: dict[str, str]) -> list[str]:
        """Exact then embedding resolution; returns the old entity ids this chunk matched."""
        self._load_keys([node_key(e) for e in chunk.workspace.entities])
        matched: list[str] = []
        pending: list[Entity] = []
        for entity in chunk.workspace.entities:
            old = self.keys.get(node_key(entity))
            if old is not None and self._entity(old).source != chunk.source:
                self._merge_into(old, entity, ids)
                matched.append(old)
            else:
                pending.append(entity)
        for entity, old_id in zip(pending, self._embedding_matches(chunk, pending), strict=True):
            if old_id is not None:
                self._merge_into(old_id, entity, ids)
                matched.append(old_id)
            else:
                self._add_entity(entity, ids)
        return sorted(set(matched))

    def _load_keys(self, keys: list[str]) -> None:
        missing = [k for k in dict.fromkeys(keys) if k not in self.keys]
        for entity in entities_by_key(self.conn, self.state.corpus_id, missing):
            self.nodes.setdefault(entity.id, entity)
            self.keys.setdefault(node_key(entity), entity.id)

    def _entity(self, entity_id: str) -> Entity:
        node = self.nodes[entity_id]
        assert isinstance(node, Entity)
        return node

    def _merge_into(self, old_id: str, new: Entity, ids: dict[str, str]) -> None:
        """Append the new roles and states that the old entity lacks; answers point at old_id."""
        old = self._entity(old_id)
        have = self._role_index(old)
        for role in new.roles:
            existing = have.get((role.role, role.source))
            if existing is not None:
                existing.states.extend(s for s in role.states if s not in existing.states)
            else:
                old.roles.append(role)
                have[(role.role, role.source)] = role
        if old.compact_roles(ROLE_CAP):
            self._roles.pop(old.id, None)
        ids[new.id] = old_id
        self.merged += 1
        self._touch(old)

    def _role_index(self, entity: Entity) -> dict[tuple[str, str], Role]:
        """(role, source) -> role of an entity, kept across merges instead of rebuilt per merge."""
        index = self._roles.get(entity.id)
        if index is None:
            index = self._roles[entity.id] = {(r.role, r.source): r for r in entity.roles}
        return index

    def _add_entity(self, entity: Entity, ids: dict[str, str]) -> None:
        added = entity.model_copy(update={"id": ids[entity.id]})
        self._touch(added)
        self.keys.setdefault(node_key(added), added.id)
        if added.kind in EXACT_ONLY:
            return  # matched by exact key only: a vector would never be read
        vector = self.embedder.embed([added.name])[0]
        self.new_vectors[added.id] = pack(vector)
        if self._index is not None:
            self._add_to_index([added.id], [added.source], vector[None, :])

    # --- embedding resolution -------------------------------------------------------------

    def _embedding_matches(self, chunk: Chunk, pending: list[Entity]) -> list[str | None]:
        """For each pending entity, the old entity it is (by faiss top-k and verifier), or None."""
        candidates = [e for e in pending if e.kind not in EXACT_ONLY]
        if not candidates:
            return [None] * len(pending)
        vectors = self.embedder.embed([e.name for e in candidates])
        found = dict(zip((e.id for e in candidates),
                         self._best_matches(chunk, candidates, vectors), strict=True))
        return [found.get(e.id) for e in pending]

    def _best_matches(self, chunk: Chunk, entities: list[Entity], vectors: np.ndarray,
                      ) -> list[str | None]:
        index = self._faiss()
        if index.ntotal == 0:
            return [None] * len(entities)
        scores, rows = index.search(vectors, min(TOP_K, index.ntotal))
        out: list[str | None] = []
        for entity, score_row, id_row in zip(entities, scores, rows, strict=True):
            pairs = [(float(s), self._index_ids[r]) for s, r in zip(score_row, id_row, strict=True)
                     if r >= 0 and self._index_sources[r] != chunk.source]
            out.append(self._choose(entity, pairs))
        return out

    def _choose(self, entity: Entity, pairs: list[tuple[float, str]]) -> str | None:
        pairs = [(s, i) for s, i in pairs if s >= VERIFY_FLOOR and self._kind_ok(entity, i)]
        if self.model is not None and pairs:
            verdicts = self._verify(entity, [i for _, i in pairs])
            return next((i for (_, i), same in zip(pairs, verdicts, strict=False) if same), None)
        return next((i for s, i in pairs if s >= AUTO_MERGE), None)

    def _kind_ok(self, entity: Entity, other_id: str) -> bool:
        if other_id not in self.nodes:
            self.nodes.update({n.id: n for n in _load_by_ids(self.conn, self.state, [other_id])})
        other = self.nodes.get(other_id)
        if not isinstance(other, Entity) or other.kind in EXACT_ONLY:
            return False
        return entity.kind == other.kind or "thing" in (entity.kind, other.kind)

    def _verify(self, entity: Entity, candidate_ids: list[str]) -> list[bool]:
        from peek.llmjson import complete_validated

        assert self.model is not None
        lines = [f"{i + 1}. A: {_describe(entity)} | B: {_describe(self._entity(c))}"
                 for i, c in enumerate(candidate_ids)]
        result = complete_validated(self.model, VERIFIER_SYSTEM, "\n".join(lines),
                                    VerifierOutput, purpose="memory entity verifier")
        return result.value.same if result.value is not None else [False] * len(candidate_ids)

    def _faiss(self) -> Any:
        """An inner-product index over the stored entity vectors, extended as entities arrive."""
        if self._index is None:
            import faiss

            self._index = faiss.IndexFlatIP(self.state.dim)
            ids, matrix = entity_vectors(self.conn, self.state.corpus_id, self.state.dim)
            sources = _sources(self.conn, self.state, ids)
            self._add_to_index(ids, sources, matrix)
            stored = set(ids)
            fresh = [i for i in self.new_vectors if i not in stored]
            if fresh:
                self._add_new(fresh)
        return self._index

    def _add_new(self, fresh: list[str]) -> None:
        import numpy as np

        from peek.memory.store import unpack

        matrix = np.stack([unpack(self.new_vectors[i], self.state.dim) for i in fresh])
        self._add_to_index(fresh, [self._entity(i).source for i in fresh], matrix)

    def _add_to_index(self, ids: list[str], sources: list[str], matrix: np.ndarray) -> None:
        import numpy as np

        if len(ids):
            self._index.add(np.ascontiguousarray(matrix, dtype=np.float32))
            self._index_ids.extend(ids)
            self._index_sources.extend(sources)

    # --- space, time and verbs ------------------------------------------------------------

    def _merge_spacetime(self, node: SpaceTimeNode, ids: dict[str, str]) -> SpaceTimeNode:
        """Same kind and name: union the name history and entities; the newer name wins."""
        members = sorted({ids.get(e, e) for e in node.entity_ids})
        key = norm_name(node.current_name)
        old = self._spacetime(node.kind, key)
        if old is None:
            added = node.model_copy(update={"id": ids[node.id], "entity_ids": members})
            self._touch(added)
            self.keys[f"{node.kind}:{key}"] = added.id
            return added
        old.name_history.update(node.name_history)
        if len(old.name_history) > NAME_HISTORY_CAP:  # a session date named by every turn
            old.name_history = dict(list(old.name_history.items())[-NAME_HISTORY_CAP:])
        old.current_name = node.current_name
        old.entity_ids = sorted(set(old.entity_ids) | set(members))
        ids[node.id] = old.id
        self._touch(old)
        return old

    def _spacetime(self, kind: str, key: str) -> SpaceTimeNode | None:
        known = self.keys.get(f"{kind}:{key}")
        if known is not None:
            node = self.nodes[known]
            return node if isinstance(node, SpaceTimeNode) else None
        found = spacetime_by_key(self.conn, self.state.corpus_id, kind, key)
        if found is not None:
            self.nodes.setdefault(found.id, found)
            self.keys[f"{kind}:{key}"] = found.id
            node = self.nodes[found.id]
            return node if isinstance(node, SpaceTimeNode) else None
        return None

    def _merge_verb(self, verb: VerbPhrase, matched: list[str]) -> None:
        """Merge into an old verb with the same key that shares an entity answer, else add."""
        if not _could_match(verb, set(matched)):
            self._touch(verb)
            return
        shared = sorted({a for q in verb.questions for a in q.answers if a in matched})
        for old in self._verb_candidates(verb, shared):
            if _shares_answer(old, verb):
                if _merge_verb_into(old, verb):
                    self._touch(old)  # a verb said again in the same words is not rewritten
                return
        self._touch(verb)

    def _verb_candidates(self, verb: VerbPhrase, shared: list[str]) -> list[VerbPhrase]:
        key = verb_key(verb)
        found: dict[str, Node] = {v.id: self.nodes.setdefault(v.id, v) for v in
                                  verbs_by_key(self.conn, self.state.corpus_id, key, shared)}
        found.update({vid: self.nodes[vid] for vid in self._verb_keys.get(key, [])})
        verbs = [v for v in found.values() if isinstance(v, VerbPhrase)]
        return sorted(verbs, key=lambda v: (v.seq, v.id))

    # --- filling open questions -----------------------------------------------------------

    def _resolve_questions(self, chunk: Chunk, matched: list[str],
                           st_nodes: list[SpaceTimeNode]) -> None:
        """Answer matched entities' open When/Where questions from this chunk's time and place."""
        if not matched:
            return
        verbs = self._open_verbs(matched)
        for verb in verbs:
            if _fill_from_spacetime(verb, st_nodes, chunk.source):
                self._touch(verb)
        if self.model is not None and verbs:
            self._llm_resolve(chunk, verbs, matched)

    def _open_verbs(self, matched: list[str]) -> list[VerbPhrase]:
        stored = open_verbs_about(self.conn, self.state.corpus_id, matched)
        verbs = [self.nodes.setdefault(v.id, v) for v in stored]
        return [v for v in verbs if isinstance(v, VerbPhrase)
                and any(q.is_open for q in v.questions)]

    def _llm_resolve(self, chunk: Chunk, verbs: list[VerbPhrase], matched: list[str]) -> None:
        from peek.llmjson import complete_validated

        assert self.model is not None
        open_qs = {q.id: (v, q) for v in verbs for q in v.questions if q.is_open}
        listing = "\n".join(f"{qid}: {v.phrase} — {q.text}" for qid, (v, q) in
                            list(open_qs.items())[:20])
        names = "\n".join(f"{e}: {self._entity(e).name}" for e in matched)
        user = f"# Open questions\n{listing}\n\n# Entities\n{names}\n\n# New text\n{chunk.text}"
        result = complete_validated(self.model, RESOLVER_SYSTEM, user, ResolutionOutput,
                                    purpose="memory question resolution")
        for answer in result.value.answers if result.value else []:
            if answer.question_id in open_qs:
                verb, question = open_qs[answer.question_id]
                valid = answer.answer_entity_id in self.nodes
                question.answers = [answer.answer_entity_id if valid and answer.answer_entity_id
                                    else TEXT_PREFIX + answer.answer_text]
                self._touch(verb)

    # --- writing ----------------------------------------------------------------------------

    def flush(self) -> int:
        """Write every changed node; returns how many were written."""
        changed = [self.nodes[i] for i in sorted(self.dirty)]
        save_nodes(self.conn, self.state.corpus_id, changed, self.new_vectors)
        self.dirty.clear()
        self.new_vectors = {}
        return len(changed)


def _describe(entity: Entity) -> str:
    roles = "; ".join(f"{r.role}: {', '.join(r.states)}" if r.states else r.role
                      for r in entity.roles[:6])
    return f"{entity.name} ({entity.kind}; {roles})"


def _remap_verb(verb: VerbPhrase, ids: dict[str, str]) -> VerbPhrase:
    questions = [q.model_copy(update={"id": f"{ids[verb.id]}{q.id.removeprefix(verb.id)}"
                                      if q.id.startswith(verb.id) else f"{ids[verb.id]}.{q.id}",
                                      "answers": [ids.get(a, a) for a in q.answers]})
                 for q in verb.questions]
    return verb.model_copy(update={"id": ids[verb.id], "questions": questions})


def _shares_answer(old: VerbPhrase, new: VerbPhrase) -> bool:
    """Same participants: some head shares an entity answer, and every head (but when/where,
    which accumulate) that both answer with entities shares one. GSW asks only the first, which
    fuses 'agent read a.py' with 'agent read b.py' through the shared agent."""
    heads_old, heads_new = _answers_by_head(old), _answers_by_head(new)
    common = [h for h in heads_old.keys() & heads_new.keys() if heads_old[h] and heads_new[h]]
    shared = [h for h in common if heads_old[h] & heads_new[h]]
    participants = [h for h in common if _participant(h)]
    return bool(shared) and all(heads_old[h] & heads_new[h] for h in participants)


def _could_match(verb: VerbPhrase, matched: set[str]) -> bool:
    """Whether an old verb could share every participant: each participant head answered with
    entities names at least one already-known entity (a brand-new file read by the agent can
    share only the agent, so scanning every old 'read' verb of the agent is wasted)."""
    heads = _answers_by_head(verb)
    participants = [a for h, a in heads.items() if a and _participant(h)]
    return all(a & matched for a in participants)


def _participant(head: str) -> bool:
    """Who/what heads name the action's participants; when/where accumulate across mentions."""
    return head.rstrip("?") not in ("when", "where")


def _answers_by_head(verb: VerbPhrase) -> dict[str, set[str]]:
    heads: dict[str, set[str]] = {}
    for q in verb.questions:
        heads.setdefault(q.head, set()).update(_entity_answers(q))
    return heads


def _entity_answers(q: Question) -> set[str]:
    return {a for a in q.answers if a != NONE_ANSWER and not a.startswith(TEXT_PREFIX)}


def _merge_verb_into(old: VerbPhrase, new: VerbPhrase) -> bool:
    """Add the new verb's questions, blobs and freshness to the old one; whether it changed."""
    count, blobs, stale = len(old.questions), dict(old.blobs), old.stale
    _merge_questions(old, new)
    old.blobs.update(new.blobs)
    old.stale = old.stale and not new.blobs
    return len(old.questions) != count or old.blobs != blobs or old.stale != stale


def _merge_questions(old: VerbPhrase, new: VerbPhrase) -> None:
    seen = {(q.text, tuple(q.answers)) for q in old.questions}
    for q in new.questions:
        if (q.text, tuple(q.answers)) not in seen:
            old.questions.append(q)
            seen.add((q.text, tuple(q.answers)))


def _fill_from_spacetime(verb: VerbPhrase, nodes: list[SpaceTimeNode], source: str) -> bool:
    filled = False
    for q in verb.questions:
        kind = {"when": "time", "where": "space"}.get(q.head.rstrip("?"))
        if q.is_open and kind is not None:
            linked = [n for n in nodes if n.kind == kind and set(n.entity_ids) & _all_ids(verb)]
            if linked:
                q.answers = [linked[0].id]
                q.source = source
                filled = True
    return filled


def _all_ids(verb: VerbPhrase) -> set[str]:
    return {a for q in verb.questions for a in q.answers}


def _load_by_ids(conn: AnyConnection, state: State, ids: list[str]) -> list[Node]:
    from peek.memory.store import nodes_by_id

    return nodes_by_id(conn, state.corpus_id, ids)


def _sources(conn: AnyConnection, state: State, ids: list[str]) -> list[str]:
    """The source of each stored entity, in the order of `ids`."""
    if not ids:
        return []
    rows = driver(conn).execute("SELECT id, data FROM memory_nodes WHERE corpus_id = ? AND "
                                "kind = ?", (state.corpus_id, "entity"))
    by_id = {r[0]: unpack_json(r[1]).get("source", "") for r in rows}
    return [by_id.get(i, "") for i in ids]
