"""Loading the embedded GGUF for drafting: one llama.cpp context per `LlamaSession`."""

from __future__ import annotations

import os
from pathlib import Path

from peek.agent.drafting.session import LlamaSession
from peek.agent.local_model import compute_threads, embedded_model_path, import_llama_cpp

DRAFT_N_CTX = 4096


def load_session(path: str | None = None, n_ctx: int = DRAFT_N_CTX) -> LlamaSession:
    """A fresh context on the GGUF at `path` (default: the embedded Gemma)."""
    llama_cpp = import_llama_cpp()
    gguf = embedded_model_path() if path is None else Path(path).expanduser()
    kv = {"type_k": 0, "type_v": 0} if os.environ.get("PEEK_KV_F32") else {}
    llama = llama_cpp.Llama(model_path=str(gguf), n_ctx=n_ctx, n_threads=compute_threads(),
                            n_threads_batch=compute_threads(),
                            verbose=False, **kv)
    return LlamaSession(llama)
