"""`peek ask` offline, learning from outcomes, and `peek eval` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_peek

from peek.agent.session import SessionStore
from peek.errors import PeekError
from peek.service import Peek

CORPUS = {
    "billing/invoice.py": (
        "class Invoice:\n"
        '    """An invoice with line items and a due date."""\n\n'
        "    def total(self):\n"
        "        return sum(item.amount for item in self.items)\n\n"
        "    def apply_discount(self, percent):\n"
        '        """Reduce every line item by a percentage discount."""\n'
        "        for item in self.items:\n"
        "            item.amount *= 1 - percent / 100\n"
    ),
    "billing/tax.py": (
        "from billing.invoice import Invoice\n\n\n"
        "def vat_rate(country):\n"
        '    """The VAT rate for a country code."""\n'
        "    return {'DE': 0.19, 'FR': 0.2}.get(country, 0.0)\n"
    ),
    "shipping/parcel.py": (
        "def parcel_weight(items):\n"
        '    """Sum the weight of the items in a parcel."""\n'
        "    return sum(i.weight for i in items)\n"
    ),
    "shipping/rates.py": (
        "from shipping.parcel import parcel_weight\n\n\n"
        "def shipping_cost(items, zone):\n"
        '    """Cost of shipping a parcel to a zone, by weight."""\n'
        "    return parcel_weight(items) * {'eu': 2.0, 'world': 5.0}[zone]\n"
    ),
    "docs/overview.md": (
        "# Overview\n\nBilling computes invoices and VAT; shipping prices parcels.\n"
    ),
}


@pytest.fixture
def corpus(make_corpus, home: Path) -> Path:
    root = make_corpus(CORPUS)
    assert run_peek("index", str(root)).returncode == 0
    return root


def test_ask_json_contract_and_verified_citations(corpus: Path) -> None:
    question = "how is a discount applied to an invoice?"
    out = run_peek("ask", str(corpus), question, "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result) >= {"answer", "citations", "steps", "tokens", "cost_usd", "model",
                           "session", "map_version"}
    assert result["model"] == "offline"
    assert result["tokens"] == {"input": 0, "output": 0}
    top = result["citations"][0]
    assert (top["path"], top["start_line"], top["end_line"]) == ("billing/invoice.py", 7, 10)
    assert "billing/invoice.py:7-10" in result["answer"]
    lines = {c["path"]: (c["start_line"], c["end_line"]) for c in result["citations"]}
    for path, (start, end) in lines.items():
        assert 1 <= start <= end <= len((corpus / path).read_text().splitlines())


def test_ask_stores_the_session_but_an_unconfirmed_answer_teaches_nothing(corpus: Path) -> None:
    before = json.loads(run_peek("map", str(corpus), "--json").stdout)["version"]
    question = "which function gives the VAT rate of a country?"
    result = json.loads(run_peek("ask", str(corpus), question, "--json").stdout)
    assert result["map_version"] == before
    assert json.loads(run_peek("map", str(corpus), "--json").stdout)["version"] == before
    peek = Peek(corpus)
    stored = SessionStore(peek.db, peek.corpus_id).trajectory(result["session"])
    assert stored["question"] == question
    assert [s["tool"] for s in stored["steps"]][:2] == ["map", "search"]
    assert stored["citations"][0]["path"] == "billing/tax.py"


def test_recorded_outcome_reaches_the_next_ask(corpus: Path) -> None:
    question = "parcel shipping cost is wrong for the world zone"
    first = json.loads(run_peek("ask", str(corpus), question, "--json").stdout)
    out = run_peek("record", str(corpus), "--session", first["session"],
                   "--edited", "shipping/rates.py", "shipping/parcel.py", "--success", "--json")
    assert out.returncode == 0, out.stderr
    shown = json.loads(run_peek("map", str(corpus), "--json").stdout)
    learned = [e for e in shown["entries"] if "shipping/rates.py" in e["text"]]
    assert learned, shown
    again = Peek(corpus).ask("the parcel shipping cost is wrong again", learn=False)
    assert again.citations[0].path == "shipping/rates.py"
    assert "learned: similar request" in again.answer


def test_record_needs_a_trajectory_or_a_session(corpus: Path) -> None:
    out = run_peek("record", str(corpus))
    assert out.returncode == 2
    assert "nothing to record" in out.stderr


def test_unknown_session_and_unknown_model_are_clear_errors(corpus: Path) -> None:
    out = run_peek("record", str(corpus), "--session", "nope", "--success")
    assert out.returncode == 2 and "no session 'nope'" in out.stderr
    out = run_peek("ask", str(corpus), "x y", "--model", "gpt-nonsense")
    assert out.returncode == 2 and "unknown model" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_empty_question_is_an_error(corpus: Path) -> None:
    with pytest.raises(PeekError, match="question is empty"):
        Peek(corpus).ask("   ")


@pytest.mark.slow
def test_eval_scores_and_compares_learned_with_empty_map(corpus: Path, tmp_path: Path) -> None:
    items = [
        {"question": "apply a percentage discount to invoice items",
         "gold_files": ["billing/invoice.py"]},
        {"question": "VAT rate per country code", "gold_files": ["billing/tax.py"]},
        {"question": "invoice discount percentage rounding", "gold_files": ["billing/invoice.py"]},
        {"question": "shipping cost by zone and weight", "gold_files": ["shipping/rates.py"]},
    ]
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("".join(json.dumps(i) + "\n" for i in items))
    map_before = run_peek("map", str(corpus), "--json").stdout
    out = run_peek("eval", str(qfile), "--corpus", str(corpus), "--learn", "2", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    keys = {"n", "recall@1", "recall@5", "recall@10", "mrr", "steps_mean", "seconds_mean"}
    assert keys <= set(report) and keys <= set(report["no_map"])
    assert report["n"] == report["no_map"]["n"] == 2
    assert report["recall@5"] == 1.0
    assert 0.0 <= report["mrr"] <= 1.0
    assert run_peek("map", str(corpus), "--json").stdout == map_before


def test_eval_without_learn_has_no_baseline(corpus: Path, tmp_path: Path) -> None:
    qfile = tmp_path / "q.jsonl"
    qfile.write_text(json.dumps({"question": "parcel weight", "gold_files": ["x.py"]}) + "\n")
    report = json.loads(run_peek("eval", str(qfile), "--corpus", str(corpus), "--json").stdout)
    assert report["no_map"] is None
    assert (report["n"], report["recall@5"], report["mrr"]) == (1, 0.0, 0.0)
