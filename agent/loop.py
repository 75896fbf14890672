"""The model-driven loop: orient -> act <-> tools -> answer -> learn, as a langgraph StateGraph.

LangGraph is imported inside functions only (it costs ~1.5 s), so `import peek.agent.loop` stays
cheap for CLI paths that never run a model. The graph state holds plain JSON values and no
reducer fields, so each checkpoint is the whole state and `resume` continues exactly from it.
Budgets are checked before every model call against the session's running totals; on reaching
one the loop goes straight to `answer` with the best partial answer and says which budget
ended it. With learning on, every session's trajectory (the context-map contract) is stored and
distilled into the map as a hypothesis; its outcome, reported later, is what teaches.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TypedDict, cast

from peek.agent.citations import extract_citations, verify_citations
from peek.agent.models import Message, Model, ToolCall, ToolChoice, Usage
from peek.agent.prompts import fallback_answer, learned_hints, memory_allowance, system_prompt
from peek.agent.session import AskResult, Budgets, SessionStore, new_session_id
from peek.agent.tools import AgentTools
from peek.contextmap.trajectory import Citation
from peek.errors import PeekError, QueryError
from peek.tokens import count_tokens

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph

    from peek.agent.workspace import Workspace

log = logging.getLogger("peek.agent.loop")
CHECKPOINTS_DB = "checkpoints.db"
MAX_FALLBACK_SPANS = 10
EventSink = Callable[[dict[str, Any]], None]


class AgentState(TypedDict, total=False):
    """One session in flight; plain JSON so the SQLite checkpointer stores it as is."""

    question: str
    messages: list[dict[str, Any]]
    steps: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    tool_steps: list[dict[str, Any]]
    read: list[dict[str, Any]]
    seen: list[dict[str, Any]]
    stopped_by: str | None
    answer: str
    citations: list[dict[str, Any]]
    trajectory: dict[str, Any]
    map_version: int


def run_agent(peek: Workspace, question: str, model: Model, budgets: Budgets, *,
              session: str | None = None, resume: bool = False, learn: bool = True,
              on_event: EventSink | None = None) -> AskResult:
    """Answer `question` with `model` and the corpus tools; `resume` continues a stopped session.

    Budgets apply to the session's totals, so a resumed session needs larger ones to go on. On
    resume the stored question is used and `question` is ignored. Without `learn` nothing is
    written: no session row, checkpoints in memory, no map update.
    """
    if not learn:
        return _run_unstored(peek, question, model, budgets, session, resume, on_event)
    store = SessionStore(peek.db, peek.corpus_id)
    session = _open_session(store, question, model, session, resume)
    loop = _Loop(peek, model, budgets, session, on_event)
    start: AgentState | None = None if resume else {"question": question.strip()}
    with _checkpoints(peek) as saver:
        app = _compile(loop, saver)
        config = _config(session, budgets)
        if resume:
            _rewind(app, config, session)
        final = cast(AgentState, app.invoke(start, config))
        if final["stopped_by"] is None:
            saver.delete_thread(session)  # an answered session is never resumed
    result = _result(final, model.name, session)
    store.finish(result)
    return result


def _run_unstored(peek: Workspace, question: str, model: Model, budgets: Budgets,
                  session: str | None, resume: bool, on_event: EventSink | None) -> AskResult:
    """The same loop with learning off: nothing reaches the store."""
    from langgraph.checkpoint.memory import InMemorySaver

    if resume:
        raise PeekError("--resume needs a stored session", "resume with learning on")
    if not question.strip():
        raise QueryError("the question is empty", "say what you want to know")
    session = session or new_session_id()
    loop = _Loop(peek, model, budgets, session, on_event, learn=False)
    app = _compile(loop, InMemorySaver())
    final = cast(AgentState, app.invoke({"question": question.strip()},
                                        _config(session, budgets)))
    return _result(final, model.name, session)


def _open_session(store: SessionStore, question: str, model: Model, session: str | None,
                  resume: bool) -> str:
    """The session id to run under; a new session is recorded before the first step."""
    if resume:
        return _resumable(store, session)
    if not question.strip():
        raise QueryError("the question is empty", "say what you want to know")
    session = session or new_session_id()
    if _stored(store, session):
        raise PeekError(f"session {session!r} already exists", f"continue it: --resume {session}")
    store.start(session, question.strip(), model.name)
    return session


def _resumable(store: SessionStore, session: str | None) -> str:
    """A stored session that has not been answered yet."""
    if not session:
        raise PeekError("resume needs a session id", "pass the `session` of `peek ask --json`")
    if store.load(session).status == "done":
        raise PeekError(f"session {session!r} already has an answer", "ask a new question")
    return session


def _stored(store: SessionStore, session: str) -> bool:
    """Whether the id is taken, so a new ask never overwrites an old session."""
    try:
        store.load(session)
    except PeekError:
        return False
    return True


@contextmanager
def _checkpoints(peek: Workspace) -> Iterator[BaseCheckpointSaver[Any]]:
    """Where `--resume` finds a stopped session: the store's own database on PostgreSQL (any
    machine of the team can resume it), else a SQLite file in the home."""
    if peek.db.backend == "postgresql":
        from peek.postgres import checkpointer

        with checkpointer(peek.db.url) as saver:
            yield saver
        return
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = peek.settings.home / CHECKPOINTS_DB
    path.parent.mkdir(parents=True, exist_ok=True)
    # langgraph runs nodes in threads, hence check_same_thread
    with closing(sqlite3.connect(str(path), check_same_thread=False, timeout=30)) as conn:
        yield SqliteSaver(conn)


def _config(session: str, budgets: Budgets) -> RunnableConfig:
    """One thread per session; the recursion limit covers an act and a tools node per step."""
    limit = 2 * max(budgets.max_steps, 0) + 10
    return {"configurable": {"thread_id": session}, "recursion_limit": limit}


def _compile(loop: _Loop,
             saver: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The graph: orient -> act -> (tools -> act)* -> answer -> learn."""
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(AgentState)
    graph.add_node("orient", loop.orient)
    graph.add_node("act", loop.act)
    graph.add_node("tools", loop.run_tools)
    graph.add_node("answer", loop.answer)
    graph.add_node("learn", loop.learn)
    graph.add_edge(START, "orient")
    graph.add_edge("orient", "act")
    graph.add_conditional_edges("act", loop.route, {"tools": "tools", "answer": "answer"})
    graph.add_edge("tools", "act")
    graph.add_edge("answer", "learn")
    graph.add_edge("learn", END)
    return graph.compile(checkpointer=saver)


def _rewind(app: CompiledStateGraph[Any, Any, Any, Any], config: RunnableConfig,
            session: str) -> None:
    """Put a stopped thread back before `act`; an interrupted one just goes on from its node."""
    snapshot = app.get_state(config)
    if not snapshot.values:
        raise PeekError(f"session {session!r} has no checkpoint to resume from",
                        "ask the question again")
    if not snapshot.next:
        reset: AgentState = {"stopped_by": None, "answer": "", "citations": [], "trajectory": {}}
        app.update_state(config, reset, as_node="tools")


def _result(state: AgentState, model: str, session: str) -> AskResult:
    """The `peek ask --json` contract from the graph's final state."""
    return AskResult(
        answer=state["answer"], citations=[Citation(**c) for c in state["citations"]],
        steps=state["steps"], input_tokens=state["input_tokens"],
        output_tokens=state["output_tokens"], cost_usd=state["cost_usd"], model=model,
        session=session, map_version=state["map_version"], stopped_by=state["stopped_by"],
        trajectory=state["trajectory"])


class _Loop:
    """The graph's nodes, sharing one corpus, model, tool set and budget."""

    def __init__(self, peek: Workspace, model: Model, budgets: Budgets, session: str,
                 on_event: EventSink | None, learn: bool = True) -> None:
        self.peek = peek
        self.learns = learn
        self.model = model
        self.budgets = budgets
        self.session = session
        self.on_event = on_event
        self.tools = AgentTools(peek)

    def emit(self, event: dict[str, Any]) -> None:
        """Tell the front end (a TTY stream, a log) what just happened."""
        if self.on_event is not None:
            self.on_event(event)

    def orient(self, state: AgentState) -> AgentState:
        """Start from the map: it goes into the system prompt before the question."""
        from peek.contextmap.policy import CachePolicy

        view = CachePolicy(self.peek.db, self.peek.corpus_id, root=self.peek.root).view()
        allowance = memory_allowance(view.text)
        hints = learned_hints(self.peek, state["question"], allowance // 2)
        memory = "\n".join(part for part in (hints, recalled(
            self.peek, state["question"], allowance - count_tokens(hints))) if part)
        system = system_prompt(view.text, memory)
        messages = [Message("system", system), Message("user", state["question"])]
        return {"messages": [message_to_state(m) for m in messages], "steps": 0,
                "input_tokens": 0, "output_tokens": 0, "cost_usd": None, "tool_steps": [],
                "read": [], "seen": [], "stopped_by": None, "answer": "", "citations": [],
                "trajectory": {}, "map_version": view.version}

    def act(self, state: AgentState) -> AgentState:
        """One step: the model answers or asks for tools, unless a budget is already spent."""
        stopped = exhausted(self.budgets, state)
        if stopped is not None:
            self.emit({"event": "stopped", "step": state["steps"], "stopped_by": stopped})
            return {"stopped_by": stopped}
        messages = [message_from_state(m) for m in state["messages"]]
        # An answer must cite the corpus, so the first step has to look something up.
        choice: ToolChoice = "required" if state["steps"] == 0 else "auto"
        reply = self.model.chat(messages, self.tools.specs, choice)
        said = Message("assistant", reply.content, reply.tool_calls)
        return {"messages": [*state["messages"], message_to_state(said)],
                "steps": state["steps"] + 1, **spend(state, reply.usage)}

    def route(self, state: AgentState) -> str:
        """Tools when the last turn asked for them, else the answer."""
        if state.get("stopped_by") or not state["messages"][-1].get("tool_calls"):
            return "answer"
        return "tools"

    def run_tools(self, state: AgentState) -> AgentState:
        """Run every requested call; failures come back to the model as results."""
        asked = message_from_state(state["messages"][-1])
        calls = asked.tool_calls
        outcomes = [self.tools.run(call.name, call.arguments) for call in calls]
        for outcome in outcomes:
            self.emit({"event": "tool", "step": state["steps"], "tool": outcome.tool,
                       "args": outcome.args, "ok": outcome.ok})
        results = [message_to_state(Message("tool", o.content, tool_call_id=c.id, name=c.name))
                   for c, o in zip(calls, outcomes, strict=True)]
        return {"messages": [*state["messages"], *results],
                "tool_steps": [*state["tool_steps"], *(o.step(asked.content) for o in outcomes)],
                "read": [*state["read"], *_spans(o.read for o in outcomes)],
                "seen": [*state["seen"], *_spans(o.seen for o in outcomes)]}

    def answer(self, state: AgentState) -> AgentState:
        """The final (or best partial) answer, with only the citations the corpus backs."""
        stopped = state.get("stopped_by")
        text = last_text(state["messages"]) if stopped else _final_text(state["messages"])
        cited = extract_citations(text) or (fallback_spans(state) if stopped or not text else [])
        kept, dropped = verify_citations(self.peek, cited)
        answer = text or fallback_answer(stopped, kept)
        self.emit({"event": "answer", "citations": len(kept),
                   "dropped": [c.label() for c in dropped]})
        citations = [asdict(c) for c in kept]
        trajectory = {"question": state["question"], "steps": state["tool_steps"],
                      "answer": answer, "citations": citations,
                      "outcome": {"edited_files": [], "success": None}}
        return {"answer": answer, "citations": citations, "trajectory": trajectory}

    def learn(self, state: AgentState) -> AgentState:
        """Teach the map from this session; a failed update never fails the ask."""
        if not self.learns:
            return {}
        try:
            version = self._update_map(state["trajectory"])
        except Exception as exc:  # learning is a side effect: the answer stands without it
            log.warning("map update failed for session %s: %r", self.session, exc)
            return {}
        return {"map_version": version}

    def _update_map(self, trajectory: dict[str, Any]) -> int:
        """The model's Distiller and Cartographer; the deterministic pair if their output fails."""
        from peek.agent.feedback import distill

        result = distill(self.peek, trajectory, self.session, self.model)
        self.emit({"event": "learned", "status": result.status, "map_version": result.version})
        return result.version


def exhausted(budgets: Budgets, state: AgentState) -> str | None:
    """Which budget the session's totals have reached, if any (steps, then tokens, then cost)."""
    if state["steps"] >= budgets.max_steps:
        return "max_steps"
    tokens = state["input_tokens"] + state["output_tokens"]
    if budgets.max_tokens is not None and tokens >= budgets.max_tokens:
        return "max_tokens"
    cost = state["cost_usd"]
    if budgets.max_cost is not None and cost is not None and cost >= budgets.max_cost:
        return "max_cost"
    return None


def spend(state: AgentState, usage: Usage) -> AgentState:
    """The running totals after one model call; cost stays None until a price is known."""
    total = Usage(state["input_tokens"], state["output_tokens"], state["cost_usd"]) + usage
    return {"input_tokens": total.input_tokens, "output_tokens": total.output_tokens,
            "cost_usd": total.cost_usd}


def last_text(messages: list[dict[str, Any]]) -> str:
    """The model's last non-empty words, the best partial answer there is."""
    for message in reversed(messages):
        if message["role"] == "assistant" and message["content"].strip():
            return str(message["content"]).strip()
    return ""


def fallback_spans(state: AgentState) -> list[Citation]:
    """What was read, else what was located: the evidence a partial answer can cite."""
    spans = state["read"] or state["seen"]
    unique = dict.fromkeys(Citation(**s) for s in spans)
    return list(unique)[:MAX_FALLBACK_SPANS]


def message_to_state(message: Message) -> dict[str, Any]:
    """A Message as plain JSON for the checkpoint."""
    return {"role": message.role, "content": message.content,
            "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments}
                           for c in message.tool_calls],
            "tool_call_id": message.tool_call_id, "name": message.name}


def message_from_state(data: dict[str, Any]) -> Message:
    """The Message a checkpointed dict stands for."""
    calls = tuple(ToolCall(c["id"], c["name"], dict(c["arguments"]))
                  for c in data.get("tool_calls", []))
    return Message(data["role"], data.get("content", ""), calls, data.get("tool_call_id"),
                   data.get("name"))


def _final_text(messages: list[dict[str, Any]]) -> str:
    """The closing turn's words: a finished session answers in its last message."""
    last = messages[-1]
    return str(last["content"]).strip() if last["role"] == "assistant" else ""


def _spans(groups: Iterable[tuple[Citation, ...]]) -> list[dict[str, Any]]:
    """Spans as plain dicts, the only form the checkpoint stores."""
    return [asdict(span) for group in groups for span in group]



def recalled(peek: Workspace, question: str, budget: int) -> str:
    """The routed episode and matching entity summaries from memory, within `budget` tokens."""
    from peek.memory import memory_block

    return memory_block(peek.db, peek.corpus_id, question, budget) if budget > 0 else ""
