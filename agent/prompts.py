"""The words the loop says to a model, kept apart so they can be tuned without touching the loop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from peek.contextmap.trajectory import Citation

if TYPE_CHECKING:
    from peek.agent.workspace import Workspace

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


MEMORY_HEADER = "What past sessions on this corpus found (episodic memory; verify before citing):"
PROMPT_BUDGET = 2048  # tokens for instructions + map + memory together, never exceeded


def system_prompt(map_text: str, memory_text: str = "") -> str:
    """The instructions, the rendered map (the orientation cache), then episodic memory."""
    parts = [SYSTEM]
    if map_text.strip():
        parts.append(f"{MAP_HEADER}\n{map_text.strip()}")
    if memory_text.strip():
        parts.append(f"{MEMORY_HEADER}\n{memory_text.strip()}")
    return "\n\n".join(parts)


def memory_allowance(map_text: str) -> int:
    """Tokens left for memory once instructions, map and the memory header are in."""
    from peek.tokens import count_tokens

    used = count_tokens(system_prompt(map_text)) + count_tokens(f"\n\n{MEMORY_HEADER}\n")
    return max(0, PROMPT_BUDGET - used)


LEARNED_HEADER = "Where recorded outcomes of similar past requests point (check before citing):"
LEARNED_FILES = 5


def learned_hints(peek: Workspace, question: str, budget: int) -> str:
    """The files past outcomes point to for this question, with why, within `budget` tokens."""
    from peek.agent.offline import learned_files
    from peek.tokens import count_tokens

    lines = [f"- {path} ({why})" for path, why in learned_files(peek, question, LEARNED_FILES)]
    while lines and count_tokens("\n".join([LEARNED_HEADER, *lines])) > budget:
        lines.pop()
    return "\n".join([LEARNED_HEADER, *lines]) if lines else ""


def fallback_answer(stopped_by: str | None, spans: Sequence[Citation]) -> str:
    """The best answer without a model's words: why it stopped, then what was read."""
    why = STOP_REASONS.get(stopped_by or "", "the model gave no answer")
    if not spans:
        return f"No answer: {why} before any file was read."
    listing = "\n".join(f"- {span.label()}" for span in spans)
    return f"No final answer ({why}). Spans read so far:\n{listing}"
