"""RAPID's verification step: η = 0 is standard speculative sampling; distributions hold."""

from __future__ import annotations

import numpy as np
import pytest

from peek.agent.drafting.rapid_math import (
    adjusted_target,
    rapid_output_distribution,
    rapid_step,
    residual,
    softmax,
)

VOCAB = 6
DRAWS = 40_000


def toy(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Target logits and a different drafter distribution over a small vocabulary."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, size=VOCAB)
    q = softmax(rng.normal(0.0, 1.5, size=VOCAB))
    return z, q


def standard_step(z: np.ndarray, q: np.ndarray, token: int, u: float, rng: np.random.Generator,
                  temperature: float) -> int:
    """Leviathan et al.'s speculative sampling for one draft token, written independently."""
    p = softmax(z / temperature)
    if u <= min(1.0, p[token] / q[token]):
        return token
    fix = np.maximum(p - q, 0.0)
    return int(rng.choice(VOCAB, p=fix / fix.sum()))


def empirical_first_tokens(z: np.ndarray, q: np.ndarray, eta: float, temperature: float,
                           seed: int) -> np.ndarray:
    """Frequencies of the first emitted token over many one-token drafts drawn from q."""
    rng = np.random.default_rng(seed)
    counts = np.zeros(VOCAB)
    rows = np.stack([z, z])
    for _ in range(DRAWS):
        draft = int(rng.choice(VOCAB, p=q))
        out = rapid_step(rows, q[None, :], [draft], eta, temperature, rng)
        counts[out.tokens[0]] += 1
    return counts / DRAWS


def test_eta_zero_is_standard_speculative_sampling_draw_for_draw() -> None:
    """Same random numbers in, same tokens out, as the textbook algorithm."""
    for seed in range(20):
        z, q = toy(seed)
        draft = int(np.argmax(q))
        ours = rapid_step(np.stack([z, z]), q[None, :], [draft], 0.0, 0.7,
                          np.random.default_rng(seed))
        check_rng = np.random.default_rng(seed)
        expected = standard_step(z, q, draft, check_rng.random(), check_rng, 0.7)
        assert ours.tokens[0] == expected


def test_eta_zero_adjusted_target_and_residual_are_the_standard_ones() -> None:
    z, q = toy(1)
    p = softmax(z)
    assert np.allclose(adjusted_target(z, q, 0.0, 1.0), p)
    fix = np.maximum(p - q, 0)
    assert np.allclose(residual(p, p, q), fix / fix.sum())


@pytest.mark.slow
@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_eta_zero_output_distribution_matches_the_target(temperature: float) -> None:
    z, q = toy(7)
    target = softmax(z / temperature)
    assert np.allclose(rapid_output_distribution(z, q, 0.0, temperature), target)
    observed = empirical_first_tokens(z, q, 0.0, temperature, seed=3)
    assert np.abs(observed - target).max() < 0.012


@pytest.mark.slow
def test_eta_positive_output_follows_the_analytic_rapid_distribution() -> None:
    """With η > 0 the output leans toward the drafter, exactly as Eqs. 6, 9, 10 predict."""
    z, q = toy(11)
    expected = rapid_output_distribution(z, q, 5.0, 1.0)
    assert expected.sum() == pytest.approx(1.0)
    observed = empirical_first_tokens(z, q, 5.0, 1.0, seed=5)
    assert np.abs(observed - expected).max() < 0.012
    target = softmax(z)
    assert np.abs(expected - q).sum() < np.abs(target - q).sum()


def test_tail_protection_keeps_the_target_probability_of_unlikely_tokens() -> None:
    z = np.array([4.0, 3.5, -3.0, -4.0])
    q = np.array([0.1, 0.1, 0.7, 0.1])
    p = softmax(z)
    p_hat = adjusted_target(z, q, 2.0, 1.0)
    tail = p_hat < 0.1 * p_hat.max()
    assert tail.any()
    assert np.allclose(p_hat[tail], p[tail])
    shifted = softmax(z + 2.0 * (q - p))
    assert np.allclose(p_hat[~tail], shifted[~tail])


def test_accepts_every_draft_and_adds_a_bonus_token() -> None:
    z = np.full((4, VOCAB), -9.0)
    z[:, 2] = 9.0
    q = np.zeros((3, VOCAB))
    q[:, 2] = 1.0
    out = rapid_step(z, q, [2, 2, 2], 0.0, 1.0, np.random.default_rng(0))
    assert out.accepted == 3
    assert out.tokens == [2, 2, 2, 2]


def test_greedy_keeps_the_target_argmax_whatever_eta() -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(size=(5, VOCAB))
    best = [int(i) for i in z.argmax(axis=1)]
    draft = [best[0], best[1], (best[2] + 1) % VOCAB, best[3]]
    q = np.full((4, VOCAB), 1 / VOCAB)
    out = rapid_step(z, q, draft, 10.0, 0.0)
    assert out.tokens == best[:3]
    assert out.accepted == 2


def test_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="γ"):
        rapid_step(np.zeros((2, VOCAB)), np.zeros((2, VOCAB)), [0, 1], 0.0, 1.0)
