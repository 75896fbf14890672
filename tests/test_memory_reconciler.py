"""The Reconciler: exact and embedding entity resolution (faiss), an LLM verifier, role, verb
and space-time merges, and open questions filled from new evidence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_memory_helpers import indexed

from peek.agent.scripted import ScriptedModel
from peek.memory.embed import HashEmbedder
from peek.memory.models import Entity, Question, Role, SpaceTimeNode, VerbPhrase, Workspace
from peek.memory.operator import Chunk
from peek.memory.reconciler import Reconciler
from peek.memory.store import load_nodes, new_state, save_state


def entity(local: str, name: str, source: str, role: str, kind: str = "thing") -> Entity:
    return Entity.model_validate({"id": local, "name": name, "kind": kind, "source": source,
                                  "roles": [Role(role=role, source=source)]})


def chunk(source: str, seq: int, entities: list[Entity], verbs: list[VerbPhrase] = (),
          nodes: list[SpaceTimeNode] = ()) -> Chunk:
    return Chunk(source, seq, source, Workspace(entities=entities, verb_phrases=list(verbs),
                                                space_time=list(nodes)))


@pytest.fixture
def store(tmp_path: Path, make_corpus: Any) -> Iterator[Any]:
    service = indexed(make_corpus({"notes.md": "# notes\n"}), tmp_path / "home")
    yield service.db, service.corpus_id
    service.close()


def reconcile(store: Any, chunks: list[Chunk], model: Any = None) -> tuple[list[Any], int]:
    db, cid = store
    embedder = HashEmbedder()
    embedder.fit(["museum of modern art", "ezra edwards", "garden"])
    with db.write() as conn:
        from peek.memory.store import load_state

        state = load_state(conn, cid) or new_state(cid, embedder)
        rec = Reconciler(conn, state, embedder, model)
        for c in chunks:
            rec.reconcile(c)
        rec.flush()
        save_state(conn, state)
        return load_nodes(conn, cid), rec.merged


def entities(nodes: list[Any]) -> list[Entity]:
    return [n for n in nodes if isinstance(n, Entity)]


def test_exact_names_merge_across_chunks_but_not_within_one(store: Any) -> None:
    nodes, merged = reconcile(store, [
        chunk("c1", 1, [entity("e1", "Ezra Edwards", "c1", "instructor"),
                        entity("e2", "ezra  edwards!", "c1", "guest")]),
        chunk("c2", 2, [entity("e1", "EZRA EDWARDS", "c2", "winner")]),
    ])
    ezras = entities(nodes)
    assert len(ezras) == 2 and merged == 1
    first = next(e for e in ezras if e.source == "c1" and e.roles[0].role == "instructor")
    assert [(r.role, r.source) for r in first.roles] == [("instructor", "c1"), ("winner", "c2")]


def test_embedding_resolution_merges_near_identical_names_of_compatible_kinds(store: Any) -> None:
    nodes, _ = reconcile(store, [
        chunk("c1", 1, [entity("e1", "Museum of Modern Art", "c1", "venue", "place")]),
        chunk("c2", 2, [entity("e1", "The Museum of Modern Art", "c2", "host", "place"),
                        entity("e2", "app/museum.py", "c2", "read file", "file")]),
    ])
    museums = [e for e in entities(nodes) if "Museum" in e.name]
    assert len(museums) == 1 and {r.role for r in museums[0].roles} == {"venue", "host"}
    assert any(e.kind == "file" for e in entities(nodes))


def test_the_llm_verifier_decides_embedding_candidates(store: Any) -> None:
    no = ScriptedModel.answering_json(['{"same": [false]}'])
    nodes, _ = reconcile(store, [
        chunk("c1", 1, [entity("e1", "Museum of Modern Art", "c1", "venue")]),
        chunk("c2", 2, [entity("e1", "Modern Art Museum", "c2", "host")])], model=no)
    assert len(entities(nodes)) == 2
    prompt = no.seen_json[0][1]
    assert "Modern Art Museum" in prompt and "Museum of Modern Art" in prompt
    yes = ScriptedModel.answering_json(['{"same": [true]}'])
    nodes, merged = reconcile(store, [chunk("c3", 3, [entity("e1", "Art Museum", "c3",
                                                             "landmark")])], model=yes)
    assert merged == 1 and len(entities(nodes)) == 2


def verb(source: str, seq: int, agent: str, file: str, when: str) -> VerbPhrase:
    return VerbPhrase(id="v1", phrase="read", source=source, seq=seq, questions=[
        Question(id="v1q0", text="Who read it?", answers=[agent]),
        Question(id="v1q1", text="What was read?", answers=[file]),
        Question(id="v1q2", text="When?", answers=[when])])


def time_node(source: str, name: str, members: list[str]) -> SpaceTimeNode:
    return SpaceTimeNode(id="t1", kind="time", current_name=name, name_history={source: name},
                         source=source, entity_ids=members)


def test_verbs_with_a_shared_answer_merge_their_questions(store: Any) -> None:
    chunks = [chunk(f"s{i}", i, [entity("e1", "agent", f"s{i}", "assistant", "agent"),
                                 entity("e2", "app/a.py", f"s{i}", "read file", "file")],
                    [verb(f"s{i}", i, "e1", "e2", "t1")], [time_node(f"s{i}", f"day {i}", ["e2"])])
              for i in (1, 2)]
    nodes, _ = reconcile(store, chunks)
    verbs = [n for n in nodes if isinstance(n, VerbPhrase)]
    assert len(verbs) == 1
    whens = [q.answers for q in verbs[0].questions if q.head == "when?"]
    times = {n.id: n.current_name for n in nodes if isinstance(n, SpaceTimeNode)}
    assert sorted(times[a[0]] for a in whens) == ["day 1", "day 2"]


def test_open_questions_are_filled_from_new_time_evidence(store: Any) -> None:
    first = chunk("c1", 1, [entity("e1", "Ezra Edwards", "c1", "jumper")],
                  [verb("c1", 1, "e1", "TEXT:a wall", "None")])
    reconcile(store, [first])
    second = chunk("c2", 2, [entity("e1", "Ezra Edwards", "c2", "jumper")], [],
                   [time_node("c2", "April 9, 2026", ["e1"])])
    nodes, _ = reconcile(store, [second])
    jumped = next(n for n in nodes if isinstance(n, VerbPhrase))
    when = next(q for q in jumped.questions if q.head == "when?")
    times = {n.id: n.current_name for n in nodes if isinstance(n, SpaceTimeNode)}
    assert [times[a] for a in when.answers] == ["April 9, 2026"] and when.source == "c2"


def test_verbs_are_found_by_key_whether_few_or_many_share_it(store: Any) -> None:
    """A verb key said by few verbs is looked up from the key, one said by many (a phrase with
    no text answers) from the rarest entity's edges: both find exactly the verbs that name
    every given entity, oldest first."""
    from peek.memory.store import KEY_SCAN_CAP, save_nodes, verb_key, verbs_by_key

    def verb(vid: str, phrase: str, who: list[str], seq: int) -> VerbPhrase:
        return VerbPhrase(id=vid, phrase=phrase, source=f"s{seq}", seq=seq, questions=[
            Question(id=f"{vid}.q", head="who", text="Who?", answers=who, source=f"s{seq}")])

    db, cid = store
    many = [verb(f"v{i}", "read", ["e1", f"e{2 + i % 3}"], i) for i in range(KEY_SCAN_CAP + 6)]
    few = [verb("w1", "wrote", ["e1", "e2"], 1), verb("w2", "wrote", ["e2"], 2),
           verb("w3", "wrote", ["e2", "e1", "e9"], 3)]
    with db.write() as conn:
        save_nodes(conn, cid, many + few)
        by_many = verbs_by_key(conn, cid, verb_key(many[0]), ["e1", "e2"])
        by_few = verbs_by_key(conn, cid, verb_key(few[0]), ["e2", "e1"])
    assert [v.id for v in by_many] == [v.id for v in many if "e2" in v.questions[0].answers]
    assert [v.id for v in by_few] == ["w1", "w3"]
