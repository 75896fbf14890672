"""`peek outcomes` and `peek corrections` (SDK `outcomes()`, `corrections()`): how a person finds
the session whose recorded outcome taught something wrong, and sees what was taken back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import run_peek

from peek.errors import QueryError
from peek.service import Peek

WRONG, RIGHT = "shop/cart.py", "shop/invoice.py"


def _asked(root: Path, question: str, edited: str) -> str:
    """A stored session with a recorded outcome, as a host would make it."""
    out = run_peek("ask", str(root), question, "--json")
    session = str(json.loads(out.stdout)["session"])
    done = run_peek("record", str(root), "--session", session, "--edited", edited, "--success")
    assert done.returncode == 0, done.stderr
    return session


def _store_digest(home: Path) -> str:
    """The store's bytes (main file and WAL): a pure read leaves them as they were."""
    digest = hashlib.sha256()
    for name in ("peek.db", "peek.db-wal"):
        path = home / name
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()


def test_outcomes_list_newest_first_filter_by_file_and_never_write(shop: Path,
                                                                  home: Path) -> None:
    first = _asked(shop, "fix rounding of invoice totals", WRONG)
    second = _asked(shop, "add items to the cart", WRONG)
    third = _asked(shop, "invoice sums are off by a cent", RIGHT)
    before = _store_digest(home)

    listed = json.loads(run_peek("outcomes", str(shop), "--json").stdout)["outcomes"]
    assert [o["session"] for o in listed] == [third, second, first]
    assert listed[2] | {"recorded_at": 0} == {
        "session": first, "question": "fix rounding of invoice totals", "edited": [WRONG],
        "success": True, "recorded_at": 0, "summary": None}
    taught_wrong = json.loads(run_peek("outcomes", str(shop), "--edited", WRONG, "--json").stdout)
    assert [o["session"] for o in taught_wrong["outcomes"]] == [second, first]
    text = run_peek("outcomes", str(shop), "--limit", "1")
    assert text.returncode == 0 and len(text.stdout.splitlines()) == 1
    assert text.stdout.startswith(third) and RIGHT in text.stdout and "success" in text.stdout
    none = run_peek("outcomes", str(shop), "--edited", "shop/ledger.py")
    assert none.stdout.strip() == "(no recorded outcome edited shop/ledger.py)"
    assert _store_digest(home) == before


def test_corrections_show_what_was_taken_back_and_what_replaced_it(shop: Path) -> None:
    wrong = _asked(shop, "fix rounding of invoice totals", WRONG)
    gone = _asked(shop, "add items to the cart", WRONG)
    empty = run_peek("corrections", str(shop)).stdout.strip()
    assert empty == "(no outcome corrected or retracted)"
    fixed = run_peek("record", str(shop), "--session", wrong, "--correct", "--edited", RIGHT,
                     "--success")
    assert fixed.returncode == 0, fixed.stderr
    assert run_peek("record", str(shop), "--session", gone, "--retract").returncode == 0

    lines = run_peek("corrections", str(shop)).stdout.splitlines()
    assert len(lines) == 2
    assert f"{wrong}  corrected  {WRONG} -> {RIGHT}" in lines[0]
    assert lines[1].endswith(f"{gone}  retracted  {WRONG}")
    one = json.loads(run_peek("corrections", str(shop), "--session", gone, "--json").stdout)
    assert [(c["session"], c["reason"], c["after"]) for c in one["corrections"]] == [
        (gone, "retracted", None)]
    now = json.loads(run_peek("outcomes", str(shop), "--json").stdout)["outcomes"]
    assert [(o["session"], o["edited"]) for o in now] == [(wrong, [RIGHT])]


def test_the_sdk_lists_outcomes_and_refuses_a_limit_below_one(shop: Path, home: Path) -> None:
    session = _asked(shop, "fix rounding of invoice totals", RIGHT)
    with Peek(shop, home) as peek:
        (only,) = peek.outcomes(limit=1, edited=RIGHT)
        assert (only.session, only.edited, only.success) == (session, (RIGHT,), True)
        assert peek.outcomes(edited=WRONG) == []
        assert peek.outcomes(edited=f"./{RIGHT}") == peek.outcomes(edited=str(shop / RIGHT)) == [
            only]
        with pytest.raises(QueryError, match="--limit must be at least 1"):
            peek.outcomes(limit=0)


def test_listing_an_unindexed_corpus_is_one_line(make_corpus: Any, home: Path) -> None:
    root = make_corpus({"a.py": "x = 1\n"})
    out = run_peek("outcomes", str(root))
    assert out.returncode == 2 and out.stderr.startswith("peek: error:")
    assert len(out.stderr.strip().splitlines()) == 1
