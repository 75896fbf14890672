"""Greedy decoding on a `LlamaSession`: plain, and LLMA-drafted with batched verification."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from peek.agent.drafting.session import LlamaSession

Drafter = Callable[[Sequence[int]], list[int]]


@dataclass
class Decoded:
    """Generated tokens with the counts and clocks a speed-up claim needs."""

    tokens: list[int]
    prompt_tokens: int
    prefill_s: float
    decode_s: float
    forwards: int = 0
    drafted: int = 0
    accepted: int = 0

    @property
    def tokens_per_s(self) -> float:
        """Decode speed: generated tokens over the time after the prompt was read."""
        return len(self.tokens) / self.decode_s if self.decode_s > 0 else 0.0

    @property
    def acceptance(self) -> float:
        """Share of drafted tokens the target confirmed."""
        return self.accepted / self.drafted if self.drafted else 0.0


def prefill(session: LlamaSession, prompt: list[int]) -> tuple[np.ndarray, float]:
    """Read the prompt, reusing the cached prefix that matches it; the last row of logits."""
    started = time.perf_counter()
    keep = _common_prefix(session.tokens, prompt)
    keep = min(keep, len(prompt) - 1)  # at least one token is decoded, for its logits
    session.rollback(keep)
    last = session.extend(prompt[keep:], logits=1)[-1]
    return last, time.perf_counter() - started


def greedy(session: LlamaSession, prompt: list[int], max_tokens: int) -> Decoded:
    """One token per forward: the reference every drafted decode must reproduce."""
    logits, prefill_s = prefill(session, prompt)
    started, out = time.perf_counter(), list[int]()
    while len(out) < max_tokens:
        token = int(np.argmax(logits))
        if session.is_end(token):
            break
        out.append(token)
        if len(out) < max_tokens:
            logits = session.extend([token])[-1]
    return Decoded(out, len(prompt), prefill_s, time.perf_counter() - started,
                   forwards=len(out))


def greedy_drafted(session: LlamaSession, prompt: list[int], max_tokens: int,
                   drafter: Drafter) -> Decoded:
    """LLMA: copy a draft, verify it in one forward, keep the longest prefix the target agrees."""
    logits, prefill_s = prefill(session, prompt)
    result = Decoded([], len(prompt), prefill_s, 0.0)
    started = time.perf_counter()
    while len(result.tokens) < max_tokens:
        token = int(np.argmax(logits))
        if session.is_end(token):
            break
        result.tokens.append(token)
        room = max_tokens - len(result.tokens)
        if room <= 0:
            break
        draft = drafter([*session.tokens, token])[:room]
        logits = _verify(session, token, draft, result)
    result.decode_s = time.perf_counter() - started
    return result


def _verify(session: LlamaSession, token: int, draft: list[int], result: Decoded) -> np.ndarray:
    """Append token + draft; accept the agreeing prefix, roll the rest back, return next logits."""
    rows = session.extend([token, *draft], logits=len(draft) + 1)
    result.forwards += 1
    result.drafted += len(draft)
    best = rows.argmax(axis=1)
    n = 0
    while (n < len(draft) and int(best[n]) == draft[n] and not session.is_end(draft[n])):
        n += 1
    result.accepted += n
    result.tokens.extend(draft[:n])
    session.rollback(len(session.tokens) - len(draft) + n)
    return rows[n]


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
