"""The words the loop says to a model, kept apart so they can be tuned without touching the loop."""

from __future__ import annotations

from collections.abc import Sequence

from peek.agent.session import Citation

SYSTEM = """\
You answer questions about one corpus (a code repository or a folder of documents) by reading \
it with your tools.
- Look before you answer: search or find_symbol to find where things are, read_file to read \
the lines you rely on. Prefer a few focused calls to reading whole large files.
- Cite every claim as path:start-end (for example src/app.py:12-30), with paths relative to \
the corpus root and line numbers as read_file shows them.
- When you can answer, reply without tool calls: concisely, in a few sentences or a short \
list, each claim with its citation."""

MAP_HEADER = """\
# Context map of this corpus
What earlier sessions learned about where things are. Use it to choose where to look first; \
check what you cite against the code."""

STOP_REASONS = {
    "max_steps": "the step budget ran out",
    "max_tokens": "the token budget ran out",
    "max_cost": "the cost budget ran out",
}


def system_prompt(map_text: str) -> str:
    """The instructions, then the rendered map (the cache every session starts from)."""
    if not map_text.strip():
        return SYSTEM
    return f"{SYSTEM}\n\n{MAP_HEADER}\n{map_text.strip()}"


def fallback_answer(stopped_by: str | None, spans: Sequence[Citation]) -> str:
    """The best answer without a model's words: why it stopped, then what was read."""
    why = STOP_REASONS.get(stopped_by or "", "the model gave no answer")
    if not spans:
        return f"No answer: {why} before any file was read."
    listing = "\n".join(f"- {span.label()}" for span in spans)
    return f"No final answer ({why}). Spans read so far:\n{listing}"
