"""Code sessions in memory and their invalidation when the cited code changes (real git)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from test_memory_helpers import CODE, git_repo, indexed, trajectory

from peek.memory.invalidation import invalidate, stale_summary
from peek.memory.query import list_entities, memory_block, memory_search
from peek.memory.sessions import record_code_session


def test_a_recorded_session_is_searchable_and_its_entities_listed(tmp_path: Path) -> None:
    service = indexed(git_repo(tmp_path / "repo", CODE), tmp_path / "home")
    record_code_session(service.db, service.corpus_id, service.root, trajectory(), "s1")
    record_code_session(service.db, service.corpus_id, service.root, trajectory(), "s1")
    found = memory_search(service.db, service.corpus_id, "DATABASE_URL settings")
    assert [r.turn_ids for r in found.results] == [["session:s1"]]
    assert "Edited: app/server.py" in found.results[0].text
    rows = {e["name"]: e for e in list_entities(service.db, service.corpus_id)}
    assert rows["app/config.py"]["roles"] == ["read file, search hit, cited file"]
    assert rows["DATABASE_URL"]["kind"] == "config"
    assert rows["app/config.py::load_settings"]["kind"] == "symbol"
    block = memory_block(service.db, service.corpus_id, "Where is DATABASE_URL read?", 1500)
    assert "### DATABASE_URL (config)" in block
    service.close()


def test_changed_code_marks_memory_stale_until_it_matches_again(tmp_path: Path) -> None:
    root = git_repo(tmp_path / "repo", CODE)
    service = indexed(root, tmp_path / "home")
    record_code_session(service.db, service.corpus_id, service.root, trajectory(), "s1")
    assert invalidate(service.db, service.corpus_id, root) == 0
    original = (root / "app/config.py").read_text()
    (root / "app/config.py").write_text("DATABASE_URL = 'postgres://'\n")
    assert invalidate(service.db, service.corpus_id, root) > 0
    assert stale_summary(service.db, service.corpus_id)["turns"] == 1
    hit = memory_search(service.db, service.corpus_id, "DATABASE_URL").results[0]
    assert hit.text.endswith("(stale: the code it cites changed; re-check)")
    config = next(e for e in list_entities(service.db, service.corpus_id)
                  if e["name"] == "app/config.py")
    assert config["stale"]
    server = next(e for e in list_entities(service.db, service.corpus_id)
                  if e["name"] == "app/server.py")
    assert not server["stale"]
    (root / "app/config.py").write_text(original)
    assert invalidate(service.db, service.corpus_id, root) == 0
    assert stale_summary(service.db, service.corpus_id) == {"turns": 0, "nodes": 0}
    service.close()


def test_a_committed_change_is_seen_through_git_diff(tmp_path: Path) -> None:
    root = git_repo(tmp_path / "repo", CODE)
    service = indexed(root, tmp_path / "home")
    record_code_session(service.db, service.corpus_id, service.root, trajectory(), "s1")
    (root / "app/config.py").write_text("def load_settings():\n    return {}\n")
    git = ["git", "-c", "user.email=t@peek", "-c", "user.name=t"]
    subprocess.run([*git, "commit", "-qam", "change"], cwd=root, check=True)
    assert invalidate(service.db, service.corpus_id, root) > 0
    assert memory_search(service.db, service.corpus_id, "DATABASE_URL").results[0].text.endswith(
        "re-check)")
    service.close()


def test_a_plain_folder_is_checked_on_disk(tmp_path: Path, make_corpus) -> None:
    root = make_corpus(CODE)
    service = indexed(root, tmp_path / "home")
    record_code_session(service.db, service.corpus_id, service.root, trajectory(), "s1")
    (root / "app/config.py").unlink()
    assert invalidate(service.db, service.corpus_id, root) > 0
    service.close()
