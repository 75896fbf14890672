"""LLMA reference copying (Yang et al., "Inference with Reference"): draft by n-gram lookup.

The references (retrieved passages, files the session read) are indexed as n-gram → the tokens
that follow; when the last n generated tokens occur there (longest n first), the next tokens of
the reference are proposed as a draft and the target verifies them in one batched forward.
Verification is greedy, so the output is the target's own greedy continuation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

MIN_N = 2
MAX_N = 5
DRAFT_TOKENS = 8


@dataclass
class NgramIndex:
    """First occurrence of every n-gram (MIN_N..MAX_N) in some token sequences, as LLMA keeps."""

    min_n: int = MIN_N
    max_n: int = MAX_N
    _seqs: list[Sequence[int]] = field(default_factory=list)
    _where: dict[tuple[int, ...], tuple[int, int]] = field(default_factory=dict)

    def add(self, tokens: Sequence[int]) -> None:
        """Index one reference; earlier references win ties, like LLMA's first match."""
        seq = list(tokens)
        sid = len(self._seqs)
        self._seqs.append(seq)
        for n in range(self.min_n, self.max_n + 1):
            for end in range(n, len(seq)):
                self._where.setdefault(tuple(seq[end - n:end]), (sid, end))

    def propose(self, context: Sequence[int], k: int) -> list[int]:
        """Up to k tokens that followed the longest indexed suffix of `context`, or none."""
        for n in range(min(self.max_n, len(context)), self.min_n - 1, -1):
            hit = self._where.get(tuple(context[-n:]))
            if hit is not None:
                seq, end = self._seqs[hit[0]], hit[1]
                return list(seq[end:end + k])
        return []

    def __len__(self) -> int:
        return len(self._where)


def lookup_recent(tokens: Sequence[int], start: int, min_n: int, max_n: int,
                  k: int) -> list[int]:
    """Prompt-lookup over tokens[start:] (the output so far): the latest earlier match wins."""
    for n in range(min(max_n, len(tokens) - start - 1), min_n - 1, -1):
        tail = list(tokens[-n:])
        for end in range(len(tokens) - 1, start + n - 1, -1):
            if list(tokens[end - n:end]) == tail:
                return list(tokens[end:end + k])
    return []


@dataclass
class LlmaDrafter:
    """Drafts from the references and the prompt; then from the output's own repeats."""

    references: list[Sequence[int]] = field(default_factory=list)
    k: int = DRAFT_TOKENS
    min_n: int = MIN_N
    max_n: int = MAX_N
    proposed: int = 0
    calls: int = 0
    _prompt: list[int] = field(default_factory=list)
    _index: NgramIndex | None = None
    _length: int = 0
    _last: tuple[int, list[int]] = (0, [])

    def draft(self, tokens: Sequence[int]) -> list[int]:
        """The draft for a sequence (prompt + output so far); a new prompt is indexed once."""
        self.calls += 1
        if self._index is None or list(tokens[:len(self._prompt)]) != self._prompt:
            self._start(tokens)
        assert self._index is not None
        self._adapt(tokens)
        out = self._index.propose(tokens, self._length)
        if not out and len(tokens) > len(self._prompt) + self.min_n:
            out = lookup_recent(tokens, len(self._prompt), self.min_n, self.max_n, self._length)
        self.proposed += len(out)
        self._last = (len(tokens), out)
        return out

    def _adapt(self, tokens: Sequence[int]) -> None:
        """Draft length: double after a fully accepted draft, else one past what was kept.

        Every drafted token costs a row of the target's forward, so drafts that keep failing
        must shrink; the previous draft's fate is read off the tokens that followed it.
        """
        start, previous = self._last
        if not previous:
            return
        kept = 0
        while (kept < len(previous) and start + kept < len(tokens)
               and tokens[start + kept] == previous[kept]):
            kept += 1
        full = kept == len(previous)
        self._length = min(self.k, 2 * self._length) if full else max(1, kept + 1)

    def _start(self, prompt: Sequence[int]) -> None:
        """Index the references, then the prompt (which often holds them too)."""
        self._prompt = list(prompt)
        self._length, self._last = self.k, (0, [])
        self._index = NgramIndex(self.min_n, self.max_n)
        for ref in self.references:
            self._index.add(ref)
        self._index.add(self._prompt)
