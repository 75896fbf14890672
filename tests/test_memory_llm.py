"""The LLM Operator with a scripted JSON model: valid output, one repair, and failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from test_memory_helpers import indexed

from peek.agent.scripted import ScriptedModel
from peek.memory.ingest import ingest_turns
from peek.memory.operator import LLMOperator
from peek.memory.query import list_entities, memory_block

TEXT = "Ezra Edwards led a parkour workshop at Bethpage Black Course. He demonstrated cat leaps."
COREF = json.dumps({"text": TEXT.replace("He ", "Ezra Edwards ")})
EXTRACT = json.dumps({
    "entity_nodes": [
        {"id": "e1", "name": "Ezra Edwards", "kind": "person",
         "roles": [{"role": "instructor", "states": ["leading a workshop"]}]},
        {"id": "e2", "name": "Bethpage Black Course", "kind": "place",
         "roles": [{"role": "venue", "states": []}]}],
    "verb_phrase_nodes": [{"id": "v1", "phrase": "demonstrated", "questions": [
        {"text": "Who demonstrated?", "answers": ["e1"]},
        {"text": "What was demonstrated?", "answers": ["TEXT:cat leaps"]},
        {"text": "Where?", "answers": ["e2"]},
        {"text": "When?", "answers": ["None"]}]}]})
BAD = EXTRACT.replace('"answers": ["e2"]', '"answers": ["e9"]')
LINKS = json.dumps({"spatio_temporal_links": [
    {"linked_entities": ["e1", "e2"], "tag_type": "spatial", "tag_value": "Bethpage Black Course"},
    {"linked_entities": ["e1"], "tag_type": "temporal", "tag_value": None}]})


def test_valid_output_becomes_a_stamped_workspace() -> None:
    model = ScriptedModel.answering_json([COREF, EXTRACT, LINKS])
    chunks = LLMOperator(model).document("doc", TEXT, seq=5)
    assert len(chunks) == 1 and chunks[0].text.endswith("Ezra Edwards demonstrated cat leaps.")
    ws = chunks[0].workspace
    assert [(e.name, e.kind) for e in ws.entities] == [("Ezra Edwards", "person"),
                                                       ("Bethpage Black Course", "place")]
    assert all(e.source == "doc#0" and e.seq == 5 for e in ws.entities)
    assert [(n.kind, n.current_name, n.entity_ids) for n in ws.space_time] == [
        ("space", "Bethpage Black Course", ["e1", "e2"])]
    assert "semantic workspace" in model.seen_json[1][0] and TEXT[:20] in model.seen_json[0][1]
    assert "Ezra Edwards demonstrated" in model.seen_json[1][1]


def test_invalid_output_is_repaired_once_with_the_error() -> None:
    model = ScriptedModel.answering_json([COREF, BAD, EXTRACT, LINKS])
    operator = LLMOperator(model)
    chunks = operator.document("doc", TEXT, seq=0)
    assert len(chunks) == 1 and operator.stats.calls == 4 and operator.stats.failed == 0
    repair = model.seen_json[2][1]
    assert "Your previous output was invalid" in repair and "'e9' of v1" in repair


def test_a_chunk_the_model_cannot_extract_is_skipped_and_counted() -> None:
    model = ScriptedModel.answering_json([COREF, BAD, BAD, "not json"])
    operator = LLMOperator(model)
    assert operator.document("doc", TEXT, seq=0) == []
    assert operator.stats.failed == 1 and operator.stats.calls == 4


def test_ingest_with_a_model_reconciles_its_entities(make_corpus: Any, tmp_path: Path) -> None:
    service = indexed(make_corpus({"README.md": "book\n"}), tmp_path / "home")
    turns = [{"id": "T1", "speaker": "narrator", "text": TEXT, "time": "April 9, 2026",
              "session": "chapter-1"}]
    model = ScriptedModel.answering_json([COREF, EXTRACT, LINKS])
    counts = ingest_turns(service.db, service.corpus_id, turns, model=model)
    assert counts["added"] == 1
    names = {e["name"]: e for e in list_entities(service.db, service.corpus_id)}
    assert names["Ezra Edwards"]["roles"] == ["instructor"]
    assert names["Bethpage Black Course"]["kind"] == "place"
    block = memory_block(service.db, service.corpus_id, "What did Ezra Edwards demonstrate?", 800)
    assert "### Ezra Edwards (person)" in block and "cat leaps" in block
    service.close()
