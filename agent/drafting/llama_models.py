"""Loading a GGUF for drafting: one llama.cpp context per `LlamaSession`."""

from __future__ import annotations

from peek.agent.drafting.session import LlamaSession
from peek.agent.local_model import load_llama, model_file

DRAFT_N_CTX = 4096


def load_session(path: str | None = None, n_ctx: int = DRAFT_N_CTX) -> LlamaSession:
    """A fresh context on the GGUF at `path` (default: the embedded Gemma)."""
    return LlamaSession(load_llama(model_file(path), n_ctx=n_ctx))
