"""File ranking: how graph evidence reaches files the question's words never name."""

from __future__ import annotations

from pathlib import Path

from peek.retrieval.locate import rank_files
from peek.service import Peek


def _corpus(seeds: int) -> dict[str, str]:
    """`seeds` files that mention the question's word, best first (more mentions, same length);
    the first five import `early.py`, the rest import `late.py`; neither helper names the word."""
    files = {
        "early.py": "def shared_early():\n    return 1\n",
        "late.py": "def shared_late():\n    return 2\n",
    }
    for n in range(seeds):
        helper = "early" if n < 5 else "late"
        words = ["gizmo"] * (seeds - n) + ["filler"] * n
        files[f"pkg{n}.py"] = (f"from {helper} import shared_{helper}\n\n\n"
                               f"def run_{n}():\n    # {' '.join(words)}\n"
                               f"    return shared_{helper}()\n")
    return files


def test_pagerank_is_personalized_by_an_answers_worth_of_files(make_corpus, home: Path) -> None:
    peek = Peek(make_corpus(_corpus(10)), home)
    peek.index()
    graph = peek.graph()
    with peek.db.query() as conn:
        ranked = rank_files(conn, peek.corpus_id, "gizmo", 30, graph)
    peek.close()
    by_path = {f.path: f for f in ranked}
    assert [f.path for f in ranked[:1]] == ["pkg0.py"]
    # files leaned on by the sixth to tenth best files gain too, not only the top five's
    assert by_path["late.py"].parts["graph"] > 0 and by_path["early.py"].parts["graph"] > 0
    assert "lexical" not in by_path["late.py"].parts
