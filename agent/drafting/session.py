"""One llama.cpp context as a token sequence with its KV cache: append, read logits, roll back.

Drafting needs what `Llama.generate` hides: logits of chosen positions only (a long prompt needs
none but the last), and truncation of the KV cache after a rejected draft. This wraps the public
C API of llama-cpp-python around a loaded `Llama`, imported lazily by the caller.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from peek.errors import PeekError


@dataclass
class LlamaSession:
    """A single-sequence context: `tokens` are exactly what the KV cache holds."""

    llama: Any
    tokens: list[int] = field(default_factory=list)
    forwards: int = 0

    @property
    def n_vocab(self) -> int:
        return int(self.llama.n_vocab())

    @property
    def n_ctx(self) -> int:
        return int(self.llama.n_ctx())

    def is_end(self, token: int) -> bool:
        """True for end-of-generation tokens (EOS, end of turn)."""
        import llama_cpp

        vocab = llama_cpp.llama_model_get_vocab(self.llama.model)
        return bool(llama_cpp.llama_vocab_is_eog(vocab, token))

    def extend(self, new: list[int], logits: int = 1) -> np.ndarray:
        """Append tokens; return the logits of the last `logits` of them, one row each."""
        if len(self.tokens) + len(new) > self.n_ctx:
            raise PeekError(f"the context holds {self.n_ctx} tokens; "
                            f"{len(self.tokens) + len(new)} do not fit",
                            "use a shorter prompt or a larger context")
        rows: list[np.ndarray] = []
        step = int(self.llama.n_batch)
        for start in range(0, len(new), step):
            part = new[start:start + step]
            first_out = len(new) - logits - start
            rows.extend(self._decode(part, max(first_out, 0)))
        return np.stack(rows) if rows else np.zeros((0, self.n_vocab), dtype=np.float32)

    def rollback(self, length: int) -> None:
        """Forget everything after the first `length` tokens (a rejected draft)."""
        import llama_cpp

        if length >= len(self.tokens):
            return
        memory = llama_cpp.llama_get_memory(self.llama.ctx)
        if not llama_cpp.llama_memory_seq_rm(memory, 0, length, -1):
            raise PeekError("llama.cpp cannot truncate this model's cache",
                            "run without drafting (--draft off)")
        del self.tokens[length:]

    def reset(self) -> None:
        """An empty cache."""
        self.rollback(0)

    def _decode(self, part: list[int], first_out: int) -> list[np.ndarray]:
        """One llama_decode of `part`; rows for positions from `first_out` on are returned."""
        import llama_cpp

        batch = llama_cpp.llama_batch_init(len(part), 0, 1)
        try:
            base = len(self.tokens)
            for i, token in enumerate(part):
                batch.token[i] = token
                batch.pos[i] = base + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = i >= first_out
            batch.n_tokens = len(part)
            if llama_cpp.llama_decode(self.llama.ctx, batch) != 0:
                raise PeekError("llama.cpp failed to decode the batch", "retry with --draft off")
            self.tokens.extend(part)
            self.forwards += 1
            return [self._row(i) for i in range(first_out, len(part))]
        finally:
            llama_cpp.llama_batch_free(batch)

    def _row(self, index: int) -> np.ndarray:
        import llama_cpp

        pointer = llama_cpp.llama_get_logits_ith(self.llama.ctx, index)
        address = ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float))
        return np.ctypeslib.as_array(address, shape=(self.n_vocab,)).copy()
