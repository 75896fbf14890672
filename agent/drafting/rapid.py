"""RAPID on llama.cpp: a drafter reading the retrieved short context, a target reading it all.

Two `LlamaSession`s (the same GGUF or two) keep separate KV caches. Each round the drafter
proposes γ tokens on [short context; output], the target scores them in one batched forward on
[long context; output], `rapid_step` decides what to keep, and both caches roll back to the
accepted prefix. Greedy mode (temperature 0) reproduces the target's own greedy choices.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from peek.agent.drafting.decode import Decoded, prefill
from peek.agent.drafting.rapid_math import rapid_step, softmax
from peek.agent.drafting.session import LlamaSession

GAMMA = 10
ETA = 5.0


@dataclass
class RapidGenerator:
    """Retrieval-augmented speculative decoding with Eqs. 6, 9, 10 in the verification."""

    target: LlamaSession
    drafter: LlamaSession
    gamma: int = GAMMA
    eta: float = ETA
    temperature: float = 0.0
    seed: int | None = None

    def generate(self, long_prompt: list[int], short_prompt: list[int],
                 max_tokens: int) -> Decoded:
        """Up to max_tokens tokens; counts drafted and accepted tokens and target forwards."""
        rng = np.random.default_rng(self.seed)
        pending, target_s = prefill(self.target, long_prompt)
        draft_logits, draft_s = prefill(self.drafter, short_prompt)
        result = Decoded([], len(long_prompt), target_s + draft_s, 0.0)
        started = time.perf_counter()
        while len(result.tokens) < max_tokens:
            out = result.tokens
            draft_logits = _catch_up(self.drafter, short_prompt, out, draft_logits)
            xs, qs = self._draft(draft_logits, min(self.gamma, max_tokens - len(out) - 1), rng)
            step = rapid_step(self._score(long_prompt, out, pending, xs), qs, xs, self.eta,
                              self.temperature, rng)
            result.forwards += 1
            result.drafted += len(xs)
            result.accepted += step.accepted
            ends = [i for i, t in enumerate(step.tokens) if self.target.is_end(t)]
            out.extend(step.tokens[:ends[0]] if ends else step.tokens)
            if ends:
                break
        result.decode_s = time.perf_counter() - started
        return result

    def _score(self, prompt: list[int], out: list[int], pending: np.ndarray,
               xs: list[int]) -> np.ndarray:
        """Target logits for each draft position and the bonus: one batched forward."""
        self.target.rollback(_shared(self.target.tokens, prompt, out))
        missing = out[len(self.target.tokens) - len(prompt):]
        rows = self.target.extend([*missing, *xs], logits=len(xs) + (1 if missing else 0))
        return rows if missing else np.vstack([pending[None, :], rows])

    def _draft(self, logits: np.ndarray, count: int,
               rng: np.random.Generator) -> tuple[list[int], np.ndarray]:
        """Up to γ drafter tokens on the short context, with the distribution of each."""
        tokens: list[int] = []
        probs: list[np.ndarray] = []
        for i in range(max(count, 0)):
            q = self._probs(logits)
            token = int(np.argmax(q)) if self.temperature <= 0 else int(rng.choice(len(q), p=q))
            tokens.append(token)
            probs.append(q)
            if self.drafter.is_end(token) or i + 1 == count:
                break
            logits = self.drafter.extend([token])[-1]
        return tokens, np.stack(probs) if probs else np.zeros((0, 1))

    def _probs(self, logits: np.ndarray) -> np.ndarray:
        """The drafter's distribution; one-hot at the argmax in greedy mode."""
        if self.temperature > 0:
            return softmax(logits / self.temperature)
        q = np.zeros(len(logits))
        q[int(np.argmax(logits))] = 1.0
        return q


def _shared(cached: list[int], prompt: list[int], out: list[int]) -> int:
    """How many cached tokens agree with prompt + out (the prompt is known to be cached)."""
    n = len(prompt)
    while n < len(cached) and n - len(prompt) < len(out) and cached[n] == out[n - len(prompt)]:
        n += 1
    return n


def _catch_up(session: LlamaSession, prompt: list[int], out: list[int],
              logits: np.ndarray) -> np.ndarray:
    """Roll back rejected drafts, then read the output the session has not seen."""
    session.rollback(_shared(session.tokens, prompt, out))
    missing = out[len(session.tokens) - len(prompt):]
    return session.extend(missing)[-1] if missing else logits
