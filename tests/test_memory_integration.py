"""Memory wired into peek: recorded sessions are remembered, and the agent's prompt carries it in
budget."""

from __future__ import annotations

from pathlib import Path

from peek.agent.models import Reply, ToolCall
from peek.agent.prompts import MEMORY_HEADER, PROMPT_BUDGET
from peek.agent.scripted import ScriptedModel
from peek.agent.session import Budgets
from peek.service import Peek
from peek.tokens import count_tokens

FILES = {
    "billing/invoice.py": "def apply_discount(items, percent):\n    return items\n",
    "billing/tax.py": "def vat_rate(country):\n    return 0.2\n",
}


def test_asks_are_remembered_and_the_prompt_stays_in_budget(make_corpus, home: Path) -> None:
    peek = Peek(make_corpus(FILES))
    peek.index()
    for n in range(3):
        session = peek.ask("where is the invoice discount applied?").session
        assert n or not peek.memory_episodes()  # an offline answer enters memory with its outcome
        peek.record(session=session, edited=["billing/invoice.py"], success=True)
    found = peek.memory_search("invoice discount", k=3)
    assert found.to_dict()["results"]
    assert peek.memory_episodes()
    model = ScriptedModel([
        Reply("", (ToolCall("c1", "search", {"query": "discount"}),)),
        Reply("Discounts are applied in billing/invoice.py:1-2."),
    ])
    result = peek.ask("where is the invoice discount applied?", model, Budgets(max_steps=4))
    system = model.seen[0][0].content
    assert MEMORY_HEADER in system
    assert system.index("== CONTEXT ROADMAP ==") < system.index(MEMORY_HEADER)
    assert count_tokens(system) <= PROMPT_BUDGET
    assert [c.path for c in result.citations] == ["billing/invoice.py"]
