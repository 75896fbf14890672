"""memory_search and memory_block: ranked turns, entity summaries, abstention, token budgets
(counted independently with tiktoken)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import reference_encoding
from test_memory_helpers import conversation, indexed

from peek.memory.ingest import ingest_documents, ingest_turns
from peek.memory.query import SEARCH_HEADER, memory_block, memory_search


def o200k(text: str) -> int:
    return len(reference_encoding().encode(text, disallowed_special=()))


@pytest.fixture
def memory(make_corpus: Any, tmp_path: Path) -> Any:
    service = indexed(make_corpus({"README.md": "chat logs\n"}), tmp_path / "home")
    ingest_turns(service.db, service.corpus_id, conversation())
    yield service
    service.close()


def test_search_finds_the_evidence_and_keeps_the_contract(memory: Any) -> None:
    found = memory_search(memory.db, memory.corpus_id, "What did Bob renew before the flight?",
                          k=3)
    out = found.to_dict()
    assert list(out) == ["results", "tokens"]
    assert [r["turn_ids"] for r in out["results"]][0] in (["D2:5"], ["D2:7"])
    first = out["results"][0]
    assert set(first) == {"turn_ids", "text", "episode", "score"}
    assert first["text"].startswith(f"[{first['turn_ids'][0]}] (9 Sep 2024) Bob: ")
    assert isinstance(first["episode"], int) and first["score"] > 0
    assert out["tokens"] == o200k(found.block())
    assert found.block().startswith(SEARCH_HEADER)


def test_a_named_speaker_is_preferred(memory: Any) -> None:
    found = memory_search(memory.db, memory.corpus_id, "What did Alice say about the tomatoes?")
    assert found.results[0].text.split("] ")[1].startswith("(1 May 2024) Alice:")


@pytest.mark.parametrize("budget", [40, 120, 400, 2000])
def test_search_and_block_never_exceed_the_budget(memory: Any, budget: int) -> None:
    question = "What did Alice say about compost and the Lisbon castle?"
    found = memory_search(memory.db, memory.corpus_id, question, k=10, budget=budget)
    assert o200k(found.block()) == found.tokens <= budget
    block = memory_block(memory.db, memory.corpus_id, question, budget)
    assert o200k(block) <= budget
    if budget >= 2000:
        assert "## Memory episode" in block and "### Alice (person)" in block


def test_unknown_names_make_search_abstain(memory: Any) -> None:
    found = memory_search(memory.db, memory.corpus_id, "Where did Hudson Lee travel?")
    assert found.abstained and found.to_dict() == {"results": [], "tokens": 0}
    kept = memory_search(memory.db, memory.corpus_id, "Where did Alice plant basil?")
    assert kept.results and not kept.abstained


def test_documents_are_searchable_by_paragraph(make_corpus: Any, tmp_path: Path) -> None:
    service = indexed(make_corpus({"README.md": "book\n"}), tmp_path / "home")
    book = [{"id": "Chapter 1", "text": "Ezra Edwards taught parkour.\n\nHe jumped walls."},
            {"id": "Chapter 2", "text": "Chloe Castillo showed a fashion collection at the "
                                         "American Museum of Natural History."}]
    counts = ingest_documents(service.db, service.corpus_id, book)
    assert counts["added"] == 3 and counts["sessions"] == 2
    found = memory_search(service.db, service.corpus_id, "Where was the fashion show of "
                          "Chloe Castillo?", k=1)
    assert found.results[0].turn_ids == ["Chapter 2:1"]
    service.close()


def test_empty_memory_gives_empty_results(make_corpus: Any, tmp_path: Path) -> None:
    service = indexed(make_corpus({"README.md": "x\n"}), tmp_path / "home")
    assert memory_search(service.db, service.corpus_id, "anything").to_dict() == {
        "results": [], "tokens": 0}
    assert memory_block(service.db, service.corpus_id, "anything", 500) == ""
    service.close()
