"""The model-driven loop on a real indexed corpus, driven by ScriptedModel: tools, answer, learn."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from helpers import SAMPLE

from peek.agent.citations import extract_citations, verify_citations
from peek.agent.loop import run_agent
from peek.agent.models import Message, Reply, ToolCall, Usage
from peek.agent.scripted import ScriptedModel
from peek.agent.session import Budgets, SessionStore
from peek.agent.tools import AgentTools, cap_json
from peek.agent.workspace import Workspace
from peek.contextmap.policy import CachePolicy
from peek.contextmap.trajectory import Citation
from peek.errors import PeekError
from peek.sandbox import TOOL_SPECS
from peek.service import Peek

SESSION_PY = "src/http/session.py"


def run(peek: Peek, question: str, model: Any, budgets: Budgets, **options: Any) -> Any:
    """The loop on the corpus's workspace, as `Peek.ask` calls it."""
    return run_agent(Workspace.of(peek), question, model, budgets, **options)
ADAPTERS_PY = "src/http/adapters.py"
LEARNED = "Redirect handling lives in Session.resolve_redirects in src/http/session.py"


@pytest.fixture
def peek(make_corpus: Callable[[dict[str, str | bytes]], Path], tmp_path: Path) -> Iterator[Peek]:
    service = Peek(make_corpus(dict(SAMPLE)), tmp_path / "home")
    service.index()
    yield service
    service.close()


def call(n: int, tool: str, **args: Any) -> ToolCall:
    return ToolCall(f"call-{n}", tool, args)


def turn(*calls: ToolCall, text: str = "", usage: Usage | None = None) -> Reply:
    return Reply(text, calls, usage or Usage(10, 5))


def tool_messages(prompt: list[Message]) -> list[Message]:
    return [m for m in prompt if m.role == "tool"]


def checkpoints(peek: Peek, session: str) -> int:
    with closing(sqlite3.connect(peek.settings.home / "checkpoints.db")) as conn:
        row = conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id = ?", (session,))
        return int(row.fetchone()[0])


def map_version(peek: Peek) -> int:
    return CachePolicy(peek.db, peek.corpus_id, root=peek.root).view().version


def learned_json() -> list[str]:
    distill = {"diagnosis": "search found the method at once", "tags": [], "candidates": [
        {"section": "CONTEXT ROADMAP", "text": LEARNED,
         "anchors": [{"path": SESSION_PY, "start_line": 9, "end_line": 13}]}]}
    carto = {"edits": [{"op": "ADD", "section": "cr", "candidate": 0, "text": LEARNED,
                        "reason": "where redirects live"}]}
    return [json.dumps(distill), json.dumps(carto)]


def test_full_loop_reads_answers_verifies_learns_and_stores(peek: Peek) -> None:
    before = map_version(peek)
    model = ScriptedModel([
        turn(call(1, "search", query="follow redirects", k=3)),
        turn(call(2, "read_file", path=SESSION_PY, start=9, end=13)),
        turn(text=f"Session.resolve_redirects loops over redirects ({SESSION_PY}:9-13); "
                  "see also nowhere/fake.py:1-4."),
    ], json_replies=learned_json())
    events: list[dict[str, Any]] = []
    result = run(peek, "How are redirects followed?", model, Budgets(),
                       on_event=events.append)
    assert LEARNED not in CachePolicy(peek.db, peek.corpus_id).render()  # a hypothesis only
    teacher = ScriptedModel([], json_replies=learned_json())
    peek.record(session=result.session, edited=[SESSION_PY], success=True, model=teacher)

    search_result = json.loads(tool_messages(model.seen[1])[0].content)
    assert SESSION_PY in {hit["path"] for hit in search_result["hits"]}
    read_result = tool_messages(model.seen[2])[-1].content
    assert "def resolve_redirects" in read_result and "while resp.is_redirect" in read_result
    assert result.citations == [Citation(SESSION_PY, 9, 13)]  # the invented file is dropped
    assert result.stopped_by is None and result.steps == 3 and result.model == "scripted"
    assert (result.input_tokens, result.output_tokens) == (30, 15)
    assert map_version(peek) > before and LEARNED in CachePolicy(peek.db, peek.corpus_id).render()
    assert "success=True" in teacher.seen_json[0][1]  # the Distiller saw the outcome
    assert [(e["tool"], e["ok"]) for e in events if e["event"] == "tool"] == [
        ("search", True), ("read_file", True)]
    assert next(e for e in events if e["event"] == "answer")["dropped"] == ["nowhere/fake.py:1-4"]
    store = SessionStore(peek.db, peek.corpus_id)
    assert store.load(result.session).status == "done"
    stored = store.trajectory(result.session)
    assert stored == result.trajectory
    assert [(s["tool"], s["ok"]) for s in stored["steps"]] == [
        ("search", True), ("read_file", True)]
    assert stored["steps"][1]["paths"] == [SESSION_PY]
    assert stored["citations"] == [{"path": SESSION_PY, "start_line": 9, "end_line": 13}]
    assert checkpoints(peek, result.session) == 0  # answered: nothing left to resume


def test_system_prompt_carries_the_map_and_the_tools(peek: Peek) -> None:
    rendered = CachePolicy(peek.db, peek.corpus_id, root=peek.root).render()
    assert rendered  # indexing seeds the map
    model = ScriptedModel([turn(text=f"It is HTTPAdapter ({ADAPTERS_PY}:1-3).")])
    result = run(peek, "Which class sends requests?", model, Budgets())
    system, user = model.seen[0][:2]
    assert system.role == "system" and rendered in system.content
    assert "path:start-end" in system.content and user.content == "Which class sends requests?"
    assert result.citations == [Citation(ADAPTERS_PY, 1, 3)]
    names = [spec.name for spec in AgentTools(peek).specs]
    assert names == [spec["name"] for spec in TOOL_SPECS] + ["search"]


def test_tool_errors_come_back_as_results(peek: Peek) -> None:
    model = ScriptedModel([
        turn(call(1, "read_file", path="../../etc/passwd"), call(2, "rm_rf", path="/"),
             call(3, "search", query="  ")),
        turn(text="Nothing outside the corpus can be read."),
    ])
    result = run(peek, "What is in /etc/passwd?", model, Budgets())
    errors = [json.loads(m.content)["error"] for m in tool_messages(model.seen[1])]
    assert "outside the corpus root" in errors[0]
    assert "unknown tool 'rm_rf'" in errors[1] and "query" in errors[2]
    assert [s["ok"] for s in result.trajectory["steps"]] == [False, False, False]
    assert result.answer == "Nothing outside the corpus can be read." and result.citations == []


def test_max_steps_stops_with_what_was_read(peek: Peek) -> None:
    model = ScriptedModel([turn(call(n, "read_file", path=ADAPTERS_PY, start=1, end=3))
                           for n in range(3)])
    result = run(peek, "Where are retries configured?", model, Budgets(max_steps=1))
    assert result.stopped_by == "max_steps" and result.steps == 1 and len(model.seen) == 1
    assert result.citations == [Citation(ADAPTERS_PY, 1, 3)]
    assert f"{ADAPTERS_PY}:1-3" in result.answer and "step budget" in result.answer
    assert SessionStore(peek.db, peek.corpus_id).load(result.session).status == "stopped"
    assert checkpoints(peek, result.session) > 0


def test_max_tokens_keeps_the_last_words_as_partial_answer(peek: Peek) -> None:
    words = f"Retries come from getMaxRetries ({ADAPTERS_PY}:6-7); checking callers next."
    model = ScriptedModel([
        turn(call(1, "grep", pattern="getMaxRetries"), text=words, usage=Usage(400, 150)),
        turn(text="never reached"),
    ])
    result = run(peek, "How many retries?", model, Budgets(max_tokens=500))
    assert result.stopped_by == "max_tokens" and result.steps == 1
    assert (result.input_tokens, result.output_tokens) == (400, 150)
    assert result.answer == words and result.citations == [Citation(ADAPTERS_PY, 6, 7)]


def test_max_cost_counts_known_prices(peek: Peek) -> None:
    priced = Usage(10, 5, cost_usd=0.02)
    model = ScriptedModel([turn(call(1, "glob", pattern="**/*.py"), usage=priced),
                           turn(text="never reached")])
    result = run(peek, "Which Python files exist?", model, Budgets(max_cost=0.01))
    assert result.stopped_by == "max_cost" and result.cost_usd == pytest.approx(0.02)
    assert result.trajectory["steps"][0]["paths"] == [ADAPTERS_PY, SESSION_PY]


def test_resume_continues_a_stopped_session_to_an_answer(peek: Peek) -> None:
    model = ScriptedModel([
        turn(call(1, "read_file", path=ADAPTERS_PY, start=1, end=3)),
        turn(call(2, "read_file", path=SESSION_PY, start=15, end=16)),
        turn(text=f"Session.send delegates to HTTPAdapter.send ({SESSION_PY}:15-16)."),
    ])
    first = run(peek, "Who sends requests?", model, Budgets(max_steps=1))
    assert first.stopped_by == "max_steps"
    result = run(peek, "", model, Budgets(max_steps=5), session=first.session, resume=True)
    assert result.session == first.session and result.stopped_by is None and result.steps == 3
    assert result.citations == [Citation(SESSION_PY, 15, 16)]
    assert "class HTTPAdapter" in tool_messages(model.seen[1])[0].content  # history kept
    assert [s["args"]["path"] for s in result.trajectory["steps"]] == [ADAPTERS_PY, SESSION_PY]
    assert SessionStore(peek.db, peek.corpus_id).load(first.session).status == "done"
    with pytest.raises(PeekError, match="already has an answer"):
        run(peek, "", model, Budgets(), session=first.session, resume=True)


def test_a_failing_model_leaves_a_session_that_resumes_where_it_failed(peek: Peek) -> None:
    broken = ScriptedModel([turn(call(1, "read_file", path=ADAPTERS_PY, start=6, end=7))])
    with pytest.raises(PeekError, match="no replies left"):  # like a provider outage mid-session
        run(peek, "How many retries?", broken, Budgets(), session="outage1")
    assert SessionStore(peek.db, peek.corpus_id).load("outage1").status == "running"
    model = ScriptedModel([turn(text=f"Three: getMaxRetries returns 3 ({ADAPTERS_PY}:6-7).")])
    result = run(peek, "", model, Budgets(), session="outage1", resume=True)
    assert result.answer.startswith("Three") and result.steps == 2
    assert "getMaxRetries" in tool_messages(model.seen[0])[0].content
    assert [s["tool"] for s in result.trajectory["steps"]] == ["read_file"]


def test_citations_are_extracted_in_every_usual_form() -> None:
    text = ("See `a/b.py:3-5`, ./c.py:7, d.md#L2-L4, e.py:9\u201311 and a/b.py:3-5 again; "
            "not http://host:8080/x nor 10:30.")
    assert extract_citations(text) == [
        Citation("a/b.py", 3, 5), Citation("./c.py", 7, 7), Citation("d.md", 2, 4),
        Citation("e.py", 9, 11)]


def test_verify_keeps_only_lines_an_indexed_file_has(peek: Peek) -> None:
    (peek.root / "new.py").write_text("x = 1\n")  # on disk, never indexed
    cited = [Citation(SESSION_PY, 15, 99), Citation(f"./{ADAPTERS_PY}", 2, 2),
             Citation(str(peek.root / ADAPTERS_PY), 6, 7), Citation(SESSION_PY, 17, 17),
             Citation(SESSION_PY, 5, 3), Citation("new.py", 1, 1),
             Citation("../outside.py", 1, 1), Citation("/etc/passwd", 1, 1)]
    kept, dropped = verify_citations(peek, cited)
    assert kept == [Citation(SESSION_PY, 15, 16), Citation(ADAPTERS_PY, 2, 2),
                    Citation(ADAPTERS_PY, 6, 7)]
    assert dropped == cited[3:]


def test_search_tool_and_output_cap(peek: Peek) -> None:
    tools = AgentTools(peek)
    outcome = tools.run("search", {"query": "redirects", "k": "2"})
    hits = tools.search({"query": "redirects", "k": 2})["hits"]
    assert outcome.ok and len(hits) == 2
    assert set(hits[0]) == {"path", "start_line", "end_line", "symbol", "score"}
    found = tools.run("find_symbol", {"name": "Session.resolve_redirects"})
    assert json.loads(found.content)["source"] == "index" and found.paths == (SESSION_PY,)
    assert found.seen == (Citation(SESSION_PY, 9, 13),)
    cut = cap_json({"text": "x" * 500}, 100)
    assert cut.startswith('{"text": "xxx') and "output cut at 100 of 512 characters" in cut


def test_importing_the_loop_does_not_import_langgraph() -> None:
    code = "import sys, peek.agent.loop; print('langgraph' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
