"""The LLM Distiller and Cartographer, driven by a scripted model: valid, repaired, failed."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from peek.agent.scripted import ScriptedModel
from peek.blobs import git_blob_sha
from peek.contextmap import curation
from peek.contextmap.cartographer import LLMCartographer
from peek.contextmap.distiller import LLMDistiller
from peek.contextmap.policy import CachePolicy
from peek.contextmap.store import MapStore
from peek.db import Database
from peek.llmjson import strip_fences

FILES = {
    "app/config.py": "DEFAULT_PORT = 8080\n\n\ndef load_config(path):\n    return {}\n",
    "app/server.py": "from app.config import load_config\n\n\ndef start():\n    load_config('x')\n",
}
SESSION = {
    "question": "Which port does the server use by default?",
    "steps": [{"tool": "grep", "args": {"pattern": "PORT"}, "paths": ["app/config.py"],
               "ok": True}],
    "answer": "8080, from DEFAULT_PORT in app/config.py",
    "citations": [{"path": "app/config.py", "start_line": 1, "end_line": 1}],
    "outcome": {"edited_files": [], "success": True},  # confirmed: it may anchor knowledge
}


@pytest.fixture
def indexed(index_unseeded) -> tuple[Database, int, Path]:
    """This module's corpus, indexed, with an unseeded map."""
    return index_unseeded(FILES)


def distill_json(tags: list[dict[str, str]] | None = None, path: str = "app/config.py") -> str:
    return json.dumps({
        "diagnosis": "grep found the constant at once",
        "tags": tags or [],
        "candidates": [{"section": "DOMAIN CONSTANTS",
                        "text": "Server defaults (port, paths) are constants in app/config.py",
                        "anchors": [{"path": path, "start_line": 1, "end_line": 1}]}],
    })


def carto_json(*edits: dict[str, Any]) -> str:
    return json.dumps({"edits": list(edits) or [
        {"op": "ADD", "section": "dc", "candidate": 0, "reason": "transferable",
         "text": "Server defaults (port, paths) are constants in app/config.py"}]})


def llm_policy(db: Database, cid: int, root: Path, model: ScriptedModel) -> CachePolicy:
    return CachePolicy(db, cid, root=root, distiller=LLMDistiller(model),
                       cartographer=LLMCartographer(model))


def test_valid_outputs_become_entries_with_system_ids_and_anchors(indexed) -> None:
    db, cid, root = indexed
    model = ScriptedModel.answering_json([distill_json(), carto_json()])
    result = llm_policy(db, cid, root, model).update(SESSION)
    assert result.status == "applied"
    assert [(e.op, e.entry_id) for e in result.edits] == [("ADD", "dc-00001")]
    entry = MapStore(db, cid).load().entries["dc-00001"]
    sha = git_blob_sha((root / "app/config.py").read_bytes())
    assert entry.anchors[0].blob_sha == sha and entry.anchors[0].path == "app/config.py"
    (system1, user1), (system2, user2) = model.seen_json
    assert "Distiller" in system1 and "Never put the answer" in system1
    assert "(the map is empty)" in user1 and "Which port" in user1 and "grep" in user1
    assert "Cartographer" in system2 and "0. [dc] Server defaults" in user2
    assert "ids are assigned by the system" in system2


def test_invalid_json_is_repaired_once_with_the_error_sent_back(indexed) -> None:
    db, cid, root = indexed
    model = ScriptedModel.answering_json(["this is not json", distill_json(), carto_json()])
    result = llm_policy(db, cid, root, model).update(SESSION)
    assert result.status == "applied" and len(model.seen_json) == 3
    repair = model.seen_json[1][1]
    assert "this is not json" in repair and "# Validation error" in repair


def test_a_failed_repair_is_followed_by_one_fresh_retry(indexed) -> None:
    db, cid, root = indexed
    model = ScriptedModel.answering_json(
        ['{"diagnosis": 5}', '{"tags": []}', distill_json(), carto_json()])
    result = llm_policy(db, cid, root, model).update(SESSION)
    assert result.status == "applied"
    assert model.seen_json[2][1] == model.seen_json[0][1]  # the retry resends the original prompt


def test_three_bad_outputs_leave_the_map_unchanged_and_log_the_failure(
        indexed, caplog: pytest.LogCaptureFixture) -> None:
    db, cid, root = indexed
    CachePolicy(db, cid, root=root).update(SESSION)  # one entry from the deterministic policy
    before = MapStore(db, cid).load()
    model = ScriptedModel.answering_json(["nope", "still nope", "```json\n{}\n```"])
    with caplog.at_level(logging.WARNING, logger="peek.contextmap"):
        result = llm_policy(db, cid, root, model).update(SESSION)
    assert result.status == "failed" and result.edits == () and "distiller" in (result.error or "")
    assert MapStore(db, cid).load() == before
    assert "failed after 3 calls" in caplog.text
    with db.read() as conn:
        rows = conn.exec_driver_sql("SELECT status, error FROM map_sessions ORDER BY id").all()
    assert [r[0] for r in rows] == ["applied", "failed"] and "diagnosis" in rows[1][1]


def test_a_model_that_cannot_be_called_fails_after_call_and_retry(indexed) -> None:
    db, cid, root = indexed
    model = ScriptedModel.answering_json([])
    result = llm_policy(db, cid, root, model).update(SESSION)
    assert result.status == "failed" and "no JSON replies left" in (result.error or "")
    assert len(model.seen_json) == 2  # nothing to repair, so: the call, then one retry


def test_cartographer_may_not_choose_ids_and_is_repaired(indexed) -> None:
    db, cid, root = indexed
    bad = carto_json({"op": "ADD", "id": "dc-00042", "section": "dc", "text": "x"})
    model = ScriptedModel.answering_json([distill_json(), bad, carto_json()])
    result = llm_policy(db, cid, root, model).update(SESSION)
    assert "ids are assigned by the system" in model.seen_json[2][1]
    assert [e.entry_id for e in result.edits] == ["dc-00001"]


def test_cartographer_edits_must_name_existing_ids_and_spare_pinned_entries(indexed) -> None:
    db, cid, root = indexed
    CachePolicy(db, cid, root=root).update(SESSION)
    curation.set_pinned(db, cid, "cr-00001", True)
    unknown = carto_json({"op": "DELETE", "id": "cr-00099"})
    pinned = carto_json({"op": "REPLACE", "id": "cr-00001", "text": "rewritten"},
                        {"op": "ADD", "section": "pf", "text": "grep for PORT, not port"})
    tags = [{"id": "cr-00001", "tag": "helpful"}, {"id": "cr-00777", "tag": "harmful"}]
    model = ScriptedModel.answering_json([distill_json(tags), unknown, pinned])
    result = llm_policy(db, cid, root, model).update(SESSION)
    assert "needs the id of an existing entry" in model.seen_json[2][1]
    assert result.tags == {"cr-00001": "helpful"}  # unknown ids from a model are dropped
    assert [(e.op, e.entry_id) for e in result.edits] == [("ADD", "pf-00001")]
    assert MapStore(db, cid).load().entries["cr-00001"].text != "rewritten"


def test_anchors_to_files_outside_the_corpus_are_dropped(indexed) -> None:
    db, cid, root = indexed
    model = ScriptedModel.answering_json([distill_json(path="no/such/file.py"), carto_json()])
    llm_policy(db, cid, root, model).update(SESSION)
    assert MapStore(db, cid).load().entries["dc-00001"].anchors == ()


def test_fenced_json_is_unwrapped() -> None:
    assert strip_fences('```json\n{"a": 1}\n```') == '{"a": 1}'
    assert strip_fences('  {"a": 1} ') == '{"a": 1}'
