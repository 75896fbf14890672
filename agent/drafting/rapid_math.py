"""RAPID's verification step (Chen et al., ICML 2025, Eqs. 6, 9, 10) as a pure NumPy function.

The target reads the long context, the drafter the retrieved short one. At each drafted position
the target's distribution p = softmax(z/T) is moved toward the drafter's q (one distillation
step, Eq. 6): p̂ = softmax(z/T + η(q − p)); tokens where p̂ is below a tenth of its maximum keep
the target's own probability (tail protection, Eq. 9); a draft token x is accepted with
probability min(1, p̂(x)/q(x)); at the first rejection the replacement is drawn from the
adjusted residual norm(max(0, p − min(p̂, q))) (Eq. 10 in Alg. 1's form). With η = 0 this is
standard speculative sampling, which reproduces the target distribution exactly; with η > 0 the
output distribution deliberately leans toward the drafter (`rapid_output_distribution`).
Temperature 0 means greedy: accept while the draft equals the target's argmax.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

TAIL_FRACTION = 0.1


@dataclass(frozen=True, slots=True)
class StepResult:
    """The accepted draft prefix plus one target token (correction or bonus)."""

    tokens: list[int]
    accepted: int


def softmax(logits: np.ndarray) -> np.ndarray:
    """A numerically stable softmax over the last axis, in float64."""
    shifted = np.asarray(logits, dtype=np.float64)
    shifted = shifted - shifted.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def adjusted_target(z: np.ndarray, q: np.ndarray, eta: float, temperature: float) -> np.ndarray:
    """p̂ of Eq. 6 with Eq. 9's tail protection; equals p when eta is 0."""
    p = softmax(z / temperature)
    if eta == 0:
        return p
    p_hat = softmax(z / temperature + eta * (q - p))
    tail = p_hat < TAIL_FRACTION * p_hat.max()
    p_hat[tail] = p[tail]
    return p_hat


def residual(p: np.ndarray, p_hat: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Eq. 10 with Alg. 1's zero: norm(max(p − p̂, p − q, 0)); p itself if that is all zero."""
    mass = np.maximum(p - np.minimum(p_hat, q), 0.0)
    total = mass.sum()
    return mass / total if total > 0 else p


def rapid_step(target_logits: np.ndarray, draft_probs: np.ndarray,
               draft_tokens: Sequence[int], eta: float, temperature: float,
               rng: np.random.Generator | None = None) -> StepResult:
    """Verify γ draft tokens against the target's γ+1 rows of logits; return what to emit.

    `target_logits[j]` is the target's prediction for draft position j (row γ predicts the bonus
    token), `draft_probs[j]` the drafter's distribution that `draft_tokens[j]` was drawn from.
    """
    gamma = len(draft_tokens)
    if target_logits.shape[0] != gamma + 1 or draft_probs.shape[0] < gamma:
        raise ValueError("need γ+1 target rows and γ drafter rows for γ draft tokens")
    if temperature <= 0:
        return _greedy_step(target_logits, draft_tokens)
    rng = rng or np.random.default_rng()
    for j, token in enumerate(draft_tokens):
        z, q = np.asarray(target_logits[j], dtype=np.float64), np.asarray(draft_probs[j])
        p_hat = adjusted_target(z, q, eta, temperature)
        if q[token] > 0 and rng.random() <= min(1.0, p_hat[token] / q[token]):
            continue
        p = softmax(z / temperature)
        fix = int(rng.choice(len(p), p=residual(p, p_hat, q)))
        return StepResult([*map(int, draft_tokens[:j]), fix], j)
    bonus = softmax(np.asarray(target_logits[gamma], dtype=np.float64) / temperature)
    return StepResult([*map(int, draft_tokens), int(rng.choice(len(bonus), p=bonus))], gamma)


def _greedy_step(target_logits: np.ndarray, draft_tokens: Sequence[int]) -> StepResult:
    """Greedy verification: the output is exactly the target's own greedy continuation."""
    best = np.argmax(target_logits, axis=-1)
    for j, token in enumerate(draft_tokens):
        if int(best[j]) != int(token):
            return StepResult([*map(int, draft_tokens[:j]), int(best[j])], j)
    return StepResult([*map(int, draft_tokens), int(best[len(draft_tokens)])], len(draft_tokens))


def rapid_output_distribution(z: np.ndarray, q: np.ndarray, eta: float,
                              temperature: float) -> np.ndarray:
    """The exact distribution of the first emitted token when one draft is drawn from q."""
    p = softmax(np.asarray(z, dtype=np.float64) / temperature)
    p_hat = adjusted_target(np.asarray(z, dtype=np.float64), q, eta, temperature)
    accepted = np.minimum(q, p_hat)
    return accepted + (1.0 - accepted.sum()) * residual(p, p_hat, q)
