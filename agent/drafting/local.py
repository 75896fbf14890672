"""`peek ask --model local --draft rapid`: the embedded model's free-text turns run RAPID.

The target reads the whole transcript; the drafter reads a short context retrieved from it, as
RAPID's drafter reads retrieved passages: the instructions at the head, the latest tokens (the
freshest turn) at the tail, and between them the windows of the transcript that share the most
rare tokens with that tail (IDF-weighted overlap), in their original order, within
`SHORT_TOKENS`. Grammar-constrained turns (tool calls, JSON) decode as usual: RAPID's drafter
cannot see the grammar.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peek.agent.drafting.rapid import RapidGenerator
from peek.agent.drafting.session import LlamaSession
from peek.agent.local_model import STOP, LlamaCppModel, load_llama
from peek.agent.models import Usage

SHORT_TOKENS = 2048
HEAD_TOKENS = 256
TAIL_TOKENS = 512
WINDOW_TOKENS = 128


@dataclass
class RapidLlamaModel(LlamaCppModel):
    """The local model with a second context drafting from a short view of the prompt."""

    gguf: Path | None = None
    stats: dict[str, int] = field(default_factory=lambda: {"drafted": 0, "accepted": 0})
    _generator: RapidGenerator | None = field(default=None, repr=False)

    def _generate(self, prompt: str, max_tokens: int, grammar: Any) -> tuple[str, Usage]:
        """RAPID for free text (greedy, so the reply is the target's own); grammar as before."""
        if grammar is not None or self.gguf is None:
            return super()._generate(prompt, max_tokens, grammar)
        tokens = list(self.llama.tokenize(prompt.encode("utf-8")))
        out = self._rapid().generate(tokens, short_context(tokens), max_tokens)
        self.stats["drafted"] += out.drafted
        self.stats["accepted"] += out.accepted
        text = self._text(out.tokens)
        cut = min((i for i in (text.find(s) for s in STOP) if i >= 0), default=len(text))
        return text[:cut], Usage(len(tokens), len(out.tokens), 0.0)

    def _rapid(self) -> RapidGenerator:
        """Target and drafter contexts, made on first use (each holds its own KV cache)."""
        if self._generator is None:
            assert self.gguf is not None
            self._generator = RapidGenerator(LlamaSession(load_llama(self.gguf)),
                                             LlamaSession(load_llama(self.gguf)))
        return self._generator


def short_context(tokens: list[int], budget: int = SHORT_TOKENS) -> list[int]:
    """Head, the middle windows most like the tail, and the tail, within `budget` tokens."""
    if len(tokens) <= budget:
        return tokens
    head, tail = tokens[:HEAD_TOKENS], tokens[len(tokens) - TAIL_TOKENS:]
    middle = tokens[HEAD_TOKENS:len(tokens) - TAIL_TOKENS]
    windows = [middle[i:i + WINDOW_TOKENS] for i in range(0, len(middle), WINDOW_TOKENS)]
    scores = _overlaps(windows, set(tail))
    room = (budget - HEAD_TOKENS - TAIL_TOKENS) // WINDOW_TOKENS
    ranked = sorted(range(len(windows)), key=lambda i: (-scores[i], -i))  # ties: the later one
    return head + [t for i in sorted(ranked[:room]) for t in windows[i]] + tail


def _overlaps(windows: list[list[int]], query: set[int]) -> list[float]:
    """Per window, the IDF-weighted count of the query's distinct tokens it holds."""
    df = Counter(t for w in windows for t in set(w))
    idf = {t: math.log((len(windows) + 1) / (df[t] + 0.5)) for t in query if t in df}
    return [sum(idf[t] for t in set(w) & idf.keys()) for w in windows]
