"""Any provider through litellm (cloud APIs, Ollama, vLLM or llama.cpp servers), imported lazily."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from peek.agent.models import Message, Reply, ToolCall, ToolChoice, ToolSpec, Usage
from peek.errors import PeekError

# litellm reads these from the environment when it would fetch something of its own (its cost
# map at import; tokenizers, headers, notices later): it uses the bundled copies instead.
OFFLINE_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_OFFLINE_MODE": "true"}
_ENV_LOCK = threading.Lock()


@contextmanager
def litellm_offline() -> Iterator[None]:
    """litellm offline (bundled data, no fetches but the configured endpoint) while peek uses
    it; the process environment is as the user left it before and after."""
    with _ENV_LOCK:
        added = [k for k in OFFLINE_ENV if k not in os.environ]
        os.environ.update({k: OFFLINE_ENV[k] for k in added})
    try:
        yield
    finally:
        with _ENV_LOCK:
            for key in added:
                os.environ.pop(key, None)


def import_litellm() -> Any:
    """litellm, imported offline (its bundled cost map; it finds its own tokenizers)."""
    with litellm_offline():
        import litellm

    litellm.suppress_debug_info = True
    return litellm


@dataclass
class LiteLLMModel:
    """A chat model addressed by a litellm provider string, e.g. `openai/gpt-4o-mini`."""

    name: str
    api_base: str | None = None
    api_key: str | None = None
    temperature: float = 0.0
    timeout: float = 120.0

    def __post_init__(self) -> None:
        """A local server (vLLM, llama.cpp) behind --api-base takes any key: send a placeholder."""
        if self.api_key is None and self.api_base and self.name.startswith("openai/") and \
                not os.environ.get("OPENAI_API_KEY"):
            self.api_key = "sk-local"

    def chat(self, messages: list[Message], tools: list[ToolSpec] | None = None,
             tool_choice: ToolChoice = "auto") -> Reply:
        """One completion; provider errors become one-line PeekErrors that name the fix."""
        kwargs: dict[str, Any] = {"messages": [m.to_openai() for m in messages]}
        if tools:
            kwargs["tools"] = [t.to_openai() for t in tools]
            kwargs["tool_choice"] = tool_choice
        response = self._complete(**kwargs)
        message = response.choices[0].message
        calls = tuple(_tool_call(c) for c in (getattr(message, "tool_calls", None) or []))
        return Reply(message.content or "", calls, self._usage(response))

    def complete_json(self, system: str, user: str, schema: dict[str, Any]) -> str:
        """Ask for a JSON object matching `schema` (response_format where the provider has it)."""
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        fmt = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
        response = self._complete(messages=messages, response_format=fmt)
        return str(response.choices[0].message.content or "")

    def _complete(self, **kwargs: Any) -> Any:
        litellm = import_litellm()
        try:
            with litellm_offline():
                return litellm.completion(
                    model=self.name, api_base=self.api_base, api_key=self.api_key,
                    temperature=self.temperature, timeout=self.timeout, **kwargs,
                )
        except Exception as exc:  # noqa: BLE001 - litellm raises many provider-specific types
            raise _explain(self, exc) from exc

    def _usage(self, response: Any) -> Usage:
        usage = getattr(response, "usage", None)
        tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0)
        tokens_out = int(getattr(usage, "completion_tokens", 0) or 0)
        try:
            litellm = import_litellm()
            with litellm_offline():
                cost: float | None = float(litellm.completion_cost(completion_response=response))
        except Exception:  # noqa: BLE001 - unknown prices (local servers) are simply unknown
            cost = None
        return Usage(tokens_in, tokens_out, cost)


def _tool_call(raw: Any) -> ToolCall:
    try:
        arguments = json.loads(raw.function.arguments or "{}")
    except ValueError:
        arguments = {"_unparsed": raw.function.arguments}
    args = arguments if isinstance(arguments, dict) else {}
    return ToolCall(str(raw.id), str(raw.function.name), args)


def _explain(model: LiteLLMModel, exc: Exception) -> PeekError:
    """Map litellm's exception families to one line that says what to do."""
    kind = type(exc).__name__
    where = f" at {model.api_base}" if model.api_base else ""
    text = str(exc).lower()
    if kind == "AuthenticationError" or "api key" in text or "api_key" in text:
        return PeekError(f"missing or invalid API key for {model.name}",
                         "set the provider's key, e.g. OPENAI_API_KEY or ANTHROPIC_API_KEY")
    if kind in ("APIConnectionError", "ServiceUnavailableError", "Timeout", "InternalServerError"):
        return PeekError(f"cannot reach the endpoint for {model.name}{where}",
                         "check --api-base and that the server is running")
    if kind in ("NotFoundError", "BadRequestError") and "model" in str(exc).lower():
        return PeekError(f"unknown model {model.name}{where}",
                         "use a litellm provider string such as openai/gpt-4o-mini")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else kind
    return PeekError(f"model call failed ({kind}): {first[:200]}", "see the provider's message")
