"""JSON from a language model, validated against a pydantic type and repaired once.

`JSONModel` is the only model interface the map (Distiller, Cartographer) and memory (Operator,
Reconciler) see, so any model layer (litellm, llama.cpp, a vLLM endpoint, the shipped
`peek.ScriptedModel`) plugs in with one method. Neutral: it imports nothing else from peek.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

log = logging.getLogger("peek.llmjson")
T = TypeVar("T", bound=BaseModel)
_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*)\n\s*```\s*$", re.DOTALL)


class JSONModel(Protocol):
    """A model that answers a system and user prompt with JSON text meant to match `schema`."""

    def complete_json(self, system: str, user: str, schema: dict[str, Any]) -> str:
        """Return the raw text the model produced."""
        ...


@dataclass(frozen=True)
class JSONResult(Generic[T]):
    """A validated value, or None with the error of every attempt, and how many calls it took."""

    value: T | None
    calls: int
    errors: tuple[str, ...]


def strip_fences(text: str) -> str:
    """Models often wrap JSON in a ```json fence; validation wants the JSON inside."""
    m = _FENCE.match(text)
    return m.group(1) if m else text.strip()


def validate_json(text: str, schema_type: type[T], context: dict[str, Any] | None) -> T:
    """Parse and validate model output against a pydantic model (ValidationError on failure)."""
    return schema_type.model_validate_json(strip_fences(text), context=context)


def repair_prompt(user: str, bad: str, error: str) -> str:
    """The user prompt again, with the invalid output and the validator's complaint."""
    return (f"{user}\n\n# Your previous output was invalid\n{bad[:4000]}\n\n"
            f"# Validation error\n{error[:2000]}\n\n"
            "Return corrected JSON only, matching the schema exactly.")


def complete_validated(model: JSONModel, system: str, user: str, schema_type: type[T],
                       context: dict[str, Any] | None = None, purpose: str = "model call",
                       ) -> JSONResult[T]:
    """Call and validate; on invalid output repair once (error sent back), retry once, else fail."""
    attempt = _Attempt(model, system, schema_type, context, purpose)
    value, bad = attempt(user)
    if value is None and bad is not None:
        value, _ = attempt(repair_prompt(user, bad, attempt.errors[-1]))
    if value is None:
        value, _ = attempt(user)
    if value is None:
        log.error("%s failed after %d calls; the map is left unchanged", purpose, attempt.calls)
    return JSONResult(value, attempt.calls, tuple(attempt.errors))


class _Attempt(Generic[T]):
    """One model call plus validation; keeps the count of calls and every error."""

    def __init__(self, model: JSONModel, system: str, schema_type: type[T],
                 context: dict[str, Any] | None, purpose: str) -> None:
        self.model, self.system, self.schema_type = model, system, schema_type
        self.schema = schema_type.model_json_schema()
        self.context, self.purpose = context, purpose
        self.calls = 0
        self.errors: list[str] = []

    def __call__(self, user: str) -> tuple[T | None, str | None]:
        """(value, None) on success, else (None, the invalid text or None if the call failed)."""
        self.calls += 1
        try:
            text = self.model.complete_json(self.system, user, self.schema)
        except Exception as exc:  # noqa: BLE001 - any model failure is one failed attempt
            return self._fail(None, f"model call failed: {exc}")
        try:
            return validate_json(text, self.schema_type, self.context), None
        except ValidationError as exc:
            return self._fail(text, _summary(exc))

    def _fail(self, text: str | None, error: str) -> tuple[None, str | None]:
        self.errors.append(error)
        log.warning("%s: invalid output on call %d: %s", self.purpose, self.calls, error)
        return None, text


def _summary(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:8]:
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
