"""Operators: turn new material into a chunk-local GSW workspace.

Three Operators share one output type (a `Chunk`: source, seq, text, Workspace):
- `code_session_chunk` (deterministic): entities are the files, symbols and config keys seen in
  an agent trajectory; actions are read, searched, edited and answered; time is the session time
  and the git commit, and every item citing a file carries that file's blob sha.
- `turn_chunk` (deterministic): the speaker and the proper names of a turn, a `said` (or
  `wrote`) verb with Who/What/When answers, and a time node for the turn's time.
- `LLMOperator` (a model): coreference, chunking with overlap, a context note, JSON-schema
  extraction and space-time linking, as in GSW; every call is validated, repaired once and
  retried once, and a chunk whose extraction fails is skipped (and counted), never guessed.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from peek.memory.models import (
    NONE_ANSWER,
    TEXT_PREFIX,
    ContextOutput,
    CorefOutput,
    Entity,
    OperatorOutput,
    Question,
    Role,
    SpaceTimeNode,
    SpaceTimeOutput,
    VerbPhrase,
    Workspace,
)
from peek.memory.text import proper_names

if TYPE_CHECKING:
    from peek.contextmap.trajectory import Trajectory
    from peek.llmjson import JSONModel
    from peek.memory.store import TurnRecord

log = logging.getLogger("peek.memory.operator")
WHAT_CHARS = 240
CHUNK_SENTENCES = 3
CHUNK_OVERLAP = 1
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_CONFIG_KEY = re.compile(
    r"\b(?:[A-Z][A-Z0-9]*_[A-Z0-9_]+|[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*){2,})\b")
_SEARCH_TOOLS = ("search", "grep", "find", "locate", "symbol", "lookup")
_READ_TOOLS = ("read", "open", "view", "cat", "show")


@dataclass
class Chunk:
    """One unit of new evidence and the workspace the Operator extracted from it."""

    source: str
    seq: int
    text: str
    workspace: Workspace
    blobs: dict[str, str] = field(default_factory=dict)


def _clip(text: str, limit: int = WHAT_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit].rstrip() + " …"


def _entity(local: str, name: str, kind: str, role: str, source: str, seq: int,
            states: list[str] | None = None, blobs: dict[str, str] | None = None) -> Entity:
    stamped = Role(role=role, states=states or [], source=source, seq=seq, blobs=blobs or {})
    return Entity.model_validate({"id": local, "name": name, "kind": kind, "source": source,
                                  "seq": seq, "roles": [stamped]})


def _question(qid: str, text: str, answers: list[str], source: str) -> Question:
    return Question(id=qid, text=text, answers=answers or [NONE_ANSWER], source=source)


# --- conversations and documents, without a model -------------------------------------------


def turn_chunk(turn: TurnRecord) -> Chunk:
    """Speaker, named things and one `said`/`wrote` action of a turn (or document paragraph)."""
    src, seq = turn.turn_id, turn.seq
    entities: list[Entity] = []
    speaker_id = NONE_ANSWER  # documents have no speaker; their questions stay answered
    if turn.speaker and turn.source == "conversation":
        entities.append(_entity("e0", turn.speaker, "person", "speaker", src, seq))
        speaker_id = "e0"
    names = [n for n in proper_names(turn.text) if n != turn.speaker][:12]
    for i, name in enumerate(names, start=1):
        entities.append(_entity(f"e{i}", name, "thing", "mentioned", src, seq))
    questions = [_question("q2", "What was said?", [TEXT_PREFIX + _clip(turn.text)], src)]
    if speaker_id != NONE_ANSWER:
        questions.insert(0, _question("q1", "Who said it?", [speaker_id], src))
    if names:
        questions.append(_question("q3", "Who or what is mentioned?",
                                   [f"e{i}" for i in range(1, len(names) + 1)], src))
    space_time: list[SpaceTimeNode] = []
    if turn.time:
        questions.append(_question("q4", "When was it said?", ["t0"], src))
        space_time.append(SpaceTimeNode(id="t0", kind="time", current_name=turn.time,
                                        name_history={src: turn.time}, source=src, seq=seq,
                                        entity_ids=[e.id for e in entities]))
    phrase = "said" if turn.source == "conversation" else "wrote"
    verb = VerbPhrase(id="v0", phrase=phrase, questions=questions, source=src, seq=seq)
    ws = Workspace(entities=entities, verb_phrases=[verb], space_time=space_time)
    return Chunk(src, seq, turn.text, ws)


# --- code sessions, without a model ---------------------------------------------------------


@dataclass
class CodeFacts:
    """What the store knows about the files a session touched."""

    blobs: dict[str, str]
    symbols: dict[str, list[str]]
    commit: str | None
    time: str


def _fold(kept: Role, role: str, states: list[str]) -> None:
    """One role per entity per session ('read file, cited file'): a file a session read, found
    and cited is one situation, and every stored role is rewritten with its entity."""
    if role not in kept.role.split(", "):
        kept.role = f"{kept.role}, {role}"
    kept.states.extend(s for s in states if s not in kept.states)


class _Builder:
    """Accumulates chunk-local entities and verbs with unique local ids."""

    def __init__(self, source: str, seq: int, facts: CodeFacts) -> None:
        self.source, self.seq, self.facts = source, seq, facts
        self.entities: dict[tuple[str, str], Entity] = {}
        self.verbs: list[VerbPhrase] = []

    def entity(self, name: str, kind: str, role: str, states: list[str]) -> str:
        """The local id of an entity, adding it (or a new role of it) with its file's blob."""
        key = (kind, name)
        blobs = self.blobs_for(name, kind)
        if key not in self.entities:
            local = f"e{len(self.entities)}"
            self.entities[key] = _entity(local, name, kind, role, self.source, self.seq,
                                         states, blobs)
            return local
        found = self.entities[key]
        _fold(found.roles[-1], role, states)
        return found.id

    def blobs_for(self, name: str, kind: str) -> dict[str, str]:
        path = name.split("::", 1)[0] if kind in ("file", "symbol") else None
        return {path: self.facts.blobs[path]} if path in self.facts.blobs else {}

    def verb(self, phrase: str, answers: dict[str, list[str]], blobs: dict[str, str]) -> None:
        """Add an action with one question per (question text, answers) pair."""
        vid = f"v{len(self.verbs)}"
        questions = [_question(f"{vid}q{i}", text, values, self.source)
                     for i, (text, values) in enumerate(answers.items())]
        self.verbs.append(VerbPhrase(id=vid, phrase=phrase, questions=questions,
                                     source=self.source, seq=self.seq, blobs=blobs))


def code_session_chunk(traj: Trajectory, session: str, seq: int, facts: CodeFacts) -> Chunk:
    """Files, symbols and config keys of a trajectory, and what the agent did with them."""
    b = _Builder(f"session:{session}", seq, facts)
    agent = b.entity("agent", "agent", "assistant", [])
    when = ["t0"]
    for path in sorted(_read_paths(traj)):
        fid = b.entity(path, "file", "read file", [])
        b.verb("read", {"Who read it?": [agent], "What was read?": [fid], "When?": when},
               b.blobs_for(path, "file"))
    for query, paths in _searches(traj):
        hits = [b.entity(p, "file", "search hit", []) for p in paths[:5]]  # query: in the verb
        b.verb("searched", {"Who searched?": [agent], "What was searched for?":
                            [TEXT_PREFIX + _clip(query, 120)], "What was found?": hits,
                            "When?": when}, {p: facts.blobs[p] for p in paths[:5]
                                             if p in facts.blobs})
    _edits(b, traj, agent, when)
    _answer(b, traj, agent, when)
    ws = Workspace(entities=list(b.entities.values()), verb_phrases=b.verbs,
                   space_time=[_time_node(b, facts)])
    text = f"{traj.question}\n{traj.answer}"
    return Chunk(b.source, seq, text, ws, dict(facts.blobs))


def _time_node(b: _Builder, facts: CodeFacts) -> SpaceTimeNode:
    name = facts.time + (f" @ {facts.commit[:12]}" if facts.commit else "")
    return SpaceTimeNode(id="t0", kind="time", current_name=name, name_history={b.source: name},
                         source=b.source, seq=b.seq, entity_ids=[e.id for e in b.entities.values()])


def _edits(b: _Builder, traj: Trajectory, agent: str, when: list[str]) -> None:
    for path in sorted(set(traj.outcome.edited_files)):
        success = traj.outcome.success
        state = [] if success is None else ["succeeded" if success else "failed"]
        fid = b.entity(path, "file", "edited file", state)
        b.verb("edited", {"Who edited it?": [agent], "What was edited?": [fid], "When?": when},
               b.blobs_for(path, "file"))


def _answer(b: _Builder, traj: Trajectory, agent: str, when: list[str]) -> None:
    cited: list[str] = []
    for c in traj.citations:
        cited.append(b.entity(c.path, "file", "cited file", [f"lines {c.start_line}-{c.end_line}"]))
        for symbol in b.facts.symbols.get(c.path, []):
            cited.append(b.entity(f"{c.path}::{symbol}", "symbol", "cited symbol", []))
    text = f"{traj.question} {traj.answer}"
    for key in sorted(set(_CONFIG_KEY.findall(text)))[:10]:
        cited.append(b.entity(key, "config", "config key", []))
    b.verb("answered", {"Who answered?": [agent], "What was asked?":
                        [TEXT_PREFIX + _clip(traj.question, 200)],
                        "What was answered?": [TEXT_PREFIX + _clip(traj.answer, 300)],
                        "What does the answer cite?": sorted(set(cited)), "When?": when},
           {c.path: b.facts.blobs[c.path] for c in traj.citations if c.path in b.facts.blobs})


def _read_paths(traj: Trajectory) -> set[str]:
    found: set[str] = set()
    for step in traj.steps:
        if step.ok and any(t in step.tool.lower() for t in _READ_TOOLS):
            found.update(step.paths)
    return found  # a cited file is an answer's claim (the 'answered' verb), not a read


def _searches(traj: Trajectory) -> list[tuple[str, list[str]]]:
    found = []
    for step in traj.steps:
        if any(t in step.tool.lower() for t in _SEARCH_TOOLS):
            query = str(step.args.get("query") or step.args.get("pattern")
                        or step.args.get("name") or json.dumps(step.args, sort_keys=True))
            found.append((query, list(step.paths)))
    return found


# --- documents and conversations, with a model ----------------------------------------------

OPERATOR_SYSTEM = (
    "You build a semantic workspace from text. Identify actors (people, organisations, places, "
    "dates, objects, abstract entities) with chunk-local ids e1, e2, ...; give each actor its "
    "roles (situation-relevant noun phrases) and the states it is in within each role; list the "
    "explicit verb phrases joining actors and the implicit actions implied by roles; for every "
    "verb ask the generic valence questions (Who ...? What ...? Where ...? When ...?) and answer "
    "each with an entity id, TEXT:<span from the text>, or None. Output JSON only."
)
SPACETIME_SYSTEM = (
    "Link entities that share a place (spatial) or a time (temporal) in the text. For each link "
    "give the entity ids and the place or time as written, or null when it is implied. JSON only."
)
COREF_SYSTEM = (
    "Rewrite the text replacing every pronoun and short reference with the full name it refers "
    "to. Change nothing else. Return JSON {\"text\": ...}."
)
CONTEXT_SYSTEM = (
    "In one or two sentences, situate this chunk within the whole document (who, where, when), "
    "to help interpret it in isolation. Return JSON {\"context\": ...}."
)


@dataclass
class LLMStats:
    """How the LLM Operator fared: chunks extracted, chunks skipped, model calls."""

    chunks: int = 0
    failed: int = 0
    calls: int = 0


def sentence_chunks(text: str, size: int = CHUNK_SENTENCES, overlap: int = CHUNK_OVERLAP,
                    ) -> list[str]:
    """Windows of `size` sentences that overlap by `overlap` (GSW's naive splitter)."""
    sentences = [s for s in _SENTENCE.split(text.strip()) if s.strip()]
    if len(sentences) <= size:
        return [" ".join(sentences)] if sentences else []
    step = max(1, size - overlap)
    starts = range(0, len(sentences) - overlap, step)
    return [" ".join(sentences[i:i + size]) for i in starts]


class LLMOperator:
    """GSW's five-stage Operator over a JSON model (coref, chunk, context, extract, space-time)."""

    def __init__(self, model: JSONModel, coref: bool = True) -> None:
        self.model = model
        self.coref = coref
        self.stats = LLMStats()

    def _call(self, system: str, user: str, schema: type[Any], purpose: str) -> Any:
        from peek.llmjson import complete_validated

        result = complete_validated(self.model, system, user, schema, purpose=purpose)
        self.stats.calls += result.calls
        return result.value

    def document(self, doc_id: str, text: str, seq: int, time: str | None = None,
                 ) -> list[Chunk]:
        """Chunks of one document (or conversation session), each with its workspace."""
        if self.coref:
            rewritten = self._call(COREF_SYSTEM, text, CorefOutput, "memory coreference")
            text = rewritten.text if rewritten is not None else text
        pieces = sentence_chunks(text)
        chunks = []
        for i, piece in enumerate(pieces):
            context = self._context(text, piece) if len(pieces) > 1 else ""
            chunk = self.chunk(f"{doc_id}#{i}", seq, piece, context, time)
            if chunk is not None:
                chunks.append(chunk)
        return chunks

    def _context(self, document: str, piece: str) -> str:
        user = f"# Document\n{document[:6000]}\n\n# Chunk\n{piece}"
        note = self._call(CONTEXT_SYSTEM, user, ContextOutput, "memory context")
        return note.context if note is not None else ""

    def chunk(self, source: str, seq: int, text: str, context: str = "",
              time: str | None = None) -> Chunk | None:
        """Extract and space-time link one chunk; None (counted as failed) when the model fails."""
        user = (f"# Background\n{context}\n\n" if context else "") + f"# Text\n{text}"
        extracted = self._call(OPERATOR_SYSTEM, user, OperatorOutput, "memory extraction")
        if extracted is None:
            self.stats.failed += 1
            return None
        links = self._call(SPACETIME_SYSTEM, f"{user}\n\n# Extraction\n"
                           f"{extracted.model_dump_json()}", SpaceTimeOutput, "memory space-time")
        self.stats.chunks += 1
        ws = workspace_from_output(extracted, links, source, seq, time)
        return Chunk(source, seq, text, ws)


def workspace_from_output(out: OperatorOutput, links: SpaceTimeOutput | None, source: str,
                          seq: int, time: str | None) -> Workspace:
    """The validated model output as a stamped Workspace."""
    entities = [Entity(id=e.id, name=e.name, kind=e.kind, source=source, seq=seq,
                       roles=[Role(role=r.role, states=r.states, source=source, seq=seq)
                              for r in e.roles]) for e in out.entity_nodes]
    verbs = [VerbPhrase(id=v.id, phrase=v.phrase, source=source, seq=seq, questions=[
        Question(id=f"{v.id}q{i}", text=q.text, answers=q.answers or [NONE_ANSWER], source=source)
        for i, q in enumerate(v.questions)]) for v in out.verb_phrase_nodes]
    nodes = _link_nodes(links, {e.id for e in entities}, source, seq)
    if time and not any(n.kind == "time" for n in nodes):
        nodes.append(SpaceTimeNode(id="t_doc", kind="time", current_name=time,
                                   name_history={source: time}, source=source, seq=seq,
                                   entity_ids=[e.id for e in entities]))
    return Workspace(entities=entities, verb_phrases=verbs, space_time=nodes)


def _link_nodes(links: SpaceTimeOutput | None, ids: set[str], source: str, seq: int,
                ) -> list[SpaceTimeNode]:
    nodes: list[SpaceTimeNode] = []
    for i, link in enumerate(links.spatio_temporal_links if links else []):
        members = [e for e in link.linked_entities if e in ids]
        if not members or not link.tag_value:
            continue
        kind: Literal["space", "time"] = "space" if link.tag_type == "spatial" else "time"
        nodes.append(SpaceTimeNode(id=f"{kind[0]}{i}", kind=kind, current_name=link.tag_value,
                                   name_history={source: link.tag_value}, source=source, seq=seq,
                                   entity_ids=members))
    return nodes
