"""A local OpenAI-compatible model server: vLLM on a CUDA GPU, llama.cpp's server otherwise.

vLLM runs with prefix caching on (the byte-stable head of peek's prompts, instructions + map +
episode, is then computed once) and a speculative config: `ngram` (prompt lookup, which is LLMA
when the references are in the prompt) or a draft model. Without a GPU, llama-cpp-python's
server runs the embedded Gemma GGUF; it reuses the KV cache of the longest shared prompt prefix
of consecutive requests. Clients: `peek ask --model openai/local --api-base URL`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from dataclasses import dataclass

from peek.errors import PeekError

ENGINES = ("auto", "vllm", "llama.cpp")
SPECULATION = ("ngram", "off")
DEFAULT_PORT = 8011
SERVED_NAME = "local"
NGRAM_TOKENS = 5
NGRAM_MIN, NGRAM_MAX = 2, 5
DEFAULT_VLLM_MODEL = "google/gemma-3-270m"


@dataclass(frozen=True)
class ServePlan:
    """What will be started: the engine, the model and the exact command line."""

    engine: str
    model: str
    command: list[str]

    @property
    def url(self) -> str:
        """The OpenAI base URL clients pass as --api-base."""
        host = self.command[self.command.index("--host") + 1]
        port = self.command[self.command.index("--port") + 1]
        return f"http://{host}:{port}/v1"


def cuda_available() -> bool:
    """A CUDA GPU is visible: nvidia-smi answers, or torch (when installed) sees one."""
    if importlib.util.find_spec("torch") is not None:
        import torch

        return bool(torch.cuda.is_available())
    return shutil.which("nvidia-smi") is not None


def vllm_installed() -> bool:
    """The `gpu` extra is present (checked without importing vllm, which takes seconds)."""
    return importlib.util.find_spec("vllm") is not None


def choose_engine(engine: str) -> str:
    """vLLM when asked, or on auto when a GPU and vllm are both present; else llama.cpp."""
    if engine not in ENGINES:
        raise PeekError(f"unknown engine {engine!r}", "use --engine auto, vllm or llama.cpp")
    if engine == "vllm" and not (vllm_installed() and cuda_available()):
        raise PeekError("vLLM needs a CUDA GPU and the 'gpu' extra",
                        "pip install 'peek[gpu]' on a GPU machine, or use --engine llama.cpp")
    if engine == "auto":
        return "vllm" if vllm_installed() and cuda_available() else "llama.cpp"
    return engine


def speculative_config(speculation: str, draft_model: str | None) -> dict[str, object] | None:
    """vLLM's --speculative-config: a draft model if given, else prompt-lookup n-grams."""
    if draft_model:
        return {"method": "draft_model", "model": draft_model,
                "num_speculative_tokens": NGRAM_TOKENS}
    if speculation == "ngram":
        return {"method": "ngram", "num_speculative_tokens": NGRAM_TOKENS,
                "prompt_lookup_min": NGRAM_MIN, "prompt_lookup_max": NGRAM_MAX}
    if speculation == "off":
        return None
    raise PeekError(f"unknown speculation {speculation!r}", "use --speculation ngram or off")


def vllm_command(model: str, host: str, port: int, speculation: str = "ngram",
                 draft_model: str | None = None) -> list[str]:
    """vLLM's OpenAI server with prefix caching and the speculative config."""
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
               "--host", host, "--port", str(port), "--served-model-name", SERVED_NAME,
               "--enable-prefix-caching"]
    spec = speculative_config(speculation, draft_model)
    if spec is not None:
        command += ["--speculative-config", json.dumps(spec, separators=(",", ":"))]
    return command


def llama_cpp_command(gguf: str, host: str, port: int, threads: int, n_ctx: int) -> list[str]:
    """llama-cpp-python's OpenAI server on a GGUF (gemma has no chat template: name one)."""
    return [sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--host", host,
            "--port", str(port), "--n_threads", str(threads), "--n_threads_batch", str(threads),
            "--n_ctx", str(n_ctx), "--model_alias", SERVED_NAME, "--chat_format", "gemma"]


def plan(engine: str, model: str | None, host: str, port: int, speculation: str = "ngram",
         draft_model: str | None = None, home: str | os.PathLike[str] | None = None) -> ServePlan:
    """The server to start for these options (the embedded GGUF is kept in `home`)."""
    if not 0 < port < 65536:
        raise PeekError(f"--port must be from 1 to 65535, got {port}")
    chosen = choose_engine(engine)
    if chosen == "vllm":
        name = model or DEFAULT_VLLM_MODEL
        return ServePlan(chosen, name, vllm_command(name, host, port, speculation, draft_model))
    if draft_model:
        raise PeekError("--draft-model needs --engine vllm",
                        "llama.cpp's server drafts nothing here; peek ask --draft llma does")
    from peek.agent.local_model import N_CTX, compute_threads, model_file

    gguf = str(model_file(model, home))
    return ServePlan(chosen, gguf, llama_cpp_command(gguf, host, port, compute_threads(), N_CTX))
