"""LLMA through llama-cpp-python's draft-model hook, without the hook's cost on long prompts.

`Llama(draft_model=...)` makes `generate` append the drafter's tokens to each forward and keep
the prefix its sampler agrees with. But it also forces `logits_all`: every prompt token then
gets a 262k-wide row of logits computed and copied (for Gemma about 1 MB per token and as much
work as the rest of the model). `DraftingLlama` asks llama.cpp for rows only at the last
positions that the verification samples, which is all `generate` reads. Imports llama_cpp.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp.llama_speculative import LlamaDraftModel

from peek.agent.drafting.llma import LlmaDrafter


class LlmaHook(LlamaDraftModel):  # type: ignore[misc]
    """The `LlamaDraftModel` protocol around an `LlmaDrafter`: token ids in, a draft out."""

    def __init__(self, drafter: LlmaDrafter) -> None:
        self.drafter = drafter

    def __call__(self, input_ids: Any, /, **kwargs: Any) -> np.ndarray:
        """The drafter's proposal for the sequence so far (prompt + output)."""
        return np.asarray(self.drafter.draft(input_ids.tolist()), dtype=np.intc)


class DraftingLlama(llama_cpp.Llama):  # type: ignore[misc]
    """A Llama whose forwards return logits only for the rows a draft verification samples."""

    def __init__(self, *args: Any, drafter: LlmaDrafter, **kwargs: Any) -> None:
        super().__init__(*args, draft_model=LlmaHook(drafter), **kwargs)
        self.window = drafter.k + 1

    def eval(self, tokens: Sequence[int]) -> None:
        """As `Llama.eval`, but rows of logits for the last `window` tokens only."""
        self._ctx.kv_cache_seq_rm(-1, self.n_tokens, -1)
        for start in range(0, len(tokens), self.n_batch):
            part = list(tokens[start:start + self.n_batch])
            n_past = self.n_tokens
            self._batch.set_batch(batch=part, n_past=n_past, logits_all=False)
            for i in range(max(0, len(part) - self.window), len(part)):
                self._batch.batch.logits[i] = True
            self._ctx.decode(self._batch)
            self.input_ids[n_past:n_past + len(part)] = part
            self.n_tokens += len(part)
            self._requires_eval = False
