"""Which model a `--model` string names: offline, scripted, local GGUF, or any litellm provider."""

from __future__ import annotations

import os
from pathlib import Path

from peek.agent.models import Model
from peek.errors import PeekError

OFFLINE = "offline"
DRAFTS = ("off", "llma", "rapid")


def resolve_model(spec: str | None, api_base: str | None = None, draft: str = "off",
                  home: str | os.PathLike[str] | None = None) -> Model | None:
    """A Model for `spec`, or None for the offline policy (the default: no network, no key);
    the embedded GGUF is kept in `home`'s models folder, like every byte peek writes."""
    if draft not in DRAFTS:
        raise PeekError(f"unknown drafter {draft!r}", "use --draft off, llma or rapid")
    if draft != "off" and not (spec or "").startswith("local"):
        raise PeekError("--draft applies to --model local only",
                        "a served model drafts on the server: see peek serve-model")
    if spec is None or spec == OFFLINE:
        return None
    if spec.startswith("scripted:"):
        from peek.agent.scripted import ScriptedModel

        return ScriptedModel.from_file(Path(spec.removeprefix("scripted:")))
    if spec == "local" or spec.startswith("local:"):
        from peek.agent.local_model import LlamaCppModel

        path = spec.removeprefix("local").removeprefix(":") or None
        return LlamaCppModel.load(path, draft, home)
    if "/" not in spec:
        raise PeekError(
            f"unknown model {spec!r}",
            "use offline, local[:PATH.gguf], scripted:FILE, or a litellm provider string "
            "such as openai/gpt-4o-mini or hosted_vllm/NAME with --api-base",
        )
    from peek.agent.litellm_model import LiteLLMModel

    return LiteLLMModel(spec, api_base=api_base)
