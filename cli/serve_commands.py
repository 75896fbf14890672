"""`peek serve-model`: start a local OpenAI-compatible model server (vLLM or llama.cpp)."""

from __future__ import annotations

from typing import Annotated

import typer

from peek.cli.common import HomeOpt

EngineOpt = Annotated[str, typer.Option(
    "--engine", help="auto (vLLM on a CUDA GPU with the gpu extra, else llama.cpp), vllm, "
    "llama.cpp.")]


def serve_model(
    engine: EngineOpt = "auto",
    model: Annotated[str | None, typer.Option(
        "--model", help="vLLM: a model name or folder; llama.cpp: a .gguf (default: embedded).")
    ] = None,
    host: Annotated[str, typer.Option("--host", help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="The port to listen on.")] = 8011,
    speculation: Annotated[str, typer.Option(
        "--speculation", help="vLLM: ngram (prompt lookup over the references) or off.")
    ] = "ngram",
    draft_model: Annotated[str | None, typer.Option(
        "--draft-model", help="vLLM: a small model with the same vocabulary to draft with.")
    ] = None,
    print_command: Annotated[bool, typer.Option(
        "--print-command", help="Print the server command and exit.")] = False,
    home: HomeOpt = None,
) -> None:
    """Serve a local model for `peek ask --model openai/local --api-base URL` and `peek mcp`."""
    import subprocess
    import sys

    from peek.agent.serving import plan

    chosen = plan(engine, model, host, port, speculation, draft_model, home)
    if print_command:
        print(subprocess.list2cmdline(chosen.command))
        return
    sys.stderr.write(f"peek: serving {chosen.model} with {chosen.engine} at {chosen.url} "
                     f"(use --model openai/local --api-base {chosen.url})\n")
    try:
        code = subprocess.call(chosen.command)
    except KeyboardInterrupt:
        code = 0
    if code:
        raise typer.Exit(code)
