"""The deterministic Operators: code sessions (files, symbols, config keys, actions, commit) and
conversation turns; GSW's overlapping sentence chunks."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from test_memory_helpers import CODE, git_repo, indexed, trajectory

from peek.contextmap.trajectory import parse_trajectory
from peek.memory.models import TEXT_PREFIX
from peek.memory.operator import code_session_chunk, sentence_chunks, turn_chunk
from peek.memory.sessions import code_facts
from peek.memory.store import TurnRecord
from peek.schema import Corpus, File


def test_code_session_entities_actions_and_time(tmp_path: Path) -> None:
    root = git_repo(tmp_path / "repo", CODE)
    service = indexed(root, tmp_path / "home")
    traj = parse_trajectory(trajectory())
    with service.db.read() as conn:
        facts = code_facts(conn, service.corpus_id, service.root, traj, "2026-01-02 10:00 UTC")
        blobs = dict(conn.execute(select(File.path, File.blob_sha)).all())
        head = conn.scalar(select(Corpus.git_head))
    chunk = code_session_chunk(traj, "s1", 4, facts)
    ws = chunk.workspace
    names = {(e.kind, e.name) for e in ws.entities}
    assert {("file", "app/config.py"), ("file", "app/server.py"), ("agent", "agent"),
            ("symbol", "app/config.py::load_settings"), ("config", "DATABASE_URL")} <= names
    assert [v.phrase for v in ws.verb_phrases] == ["read", "searched", "edited", "answered"]
    config = next(e for e in ws.entities if e.name == "app/config.py")
    assert [r.role for r in config.roles] == ["read file, search hit, cited file"]  # one a session
    assert all(r.blobs == {"app/config.py": blobs["app/config.py"]} for r in config.roles)
    edited = next(e for e in ws.entities if e.name == "app/server.py")
    assert edited.roles[0].states == ["succeeded"]
    assert ws.space_time[0].current_name == f"2026-01-02 10:00 UTC @ {head[:12]}"
    assert all(v.seq == 4 and v.source == "session:s1" for v in ws.verb_phrases)
    searched = ws.verb_phrases[1]
    assert searched.questions[1].answers == [TEXT_PREFIX + "DATABASE_URL"]


def test_a_turn_gives_speaker_names_and_a_said_action() -> None:
    turn = TurnRecord(0, "D1:2", 1, "Bob", "Did the tomatoes like the Riverside Greenhouse?",
                      "1 May 2024", "s1", "conversation", [], {}, False, 0)
    ws = turn_chunk(turn).workspace
    assert [(e.name, e.kind, e.roles[0].role) for e in ws.entities] == [
        ("Bob", "person", "speaker"), ("Riverside Greenhouse", "thing", "mentioned")]
    verb = ws.verb_phrases[0]
    assert verb.phrase == "said"
    assert [q.answers for q in verb.questions] == [
        ["e0"], [TEXT_PREFIX + turn.text], ["e1"], ["t0"]]
    assert ws.space_time[0].current_name == "1 May 2024"


def test_sentence_chunks_overlap_by_one_sentence() -> None:
    text = "One. Two! Three? Four. Five."
    assert sentence_chunks(text) == ["One. Two! Three?", "Three? Four. Five."]
    assert sentence_chunks("Just one.") == ["Just one."]
    assert sentence_chunks("  ") == []
