"""The trajectory contract: what a finished session reports to the cache policy (CLI and MCP)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
)

from peek.contextmap.citation import Citation as Citation  # the contract's citation type
from peek.contextmap.errors import TrajectoryError

_CONTRACT = (
    '{"question": str, "steps": [{"tool": str, "args": object, "paths": [str], "ok": bool, '
    '"output": str?, "thought": str?}], '
    '"answer": str, "citations": [{"path": str, "start_line": int, "end_line": int}], '
    '"outcome": {"edited_files": [str], "success": bool|null, "summary": str?}}'
)


class Step(BaseModel):
    """One tool call of the session and the files it touched."""

    model_config = ConfigDict(extra="ignore")
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    paths: list[str] = Field(default_factory=list)
    ok: bool = True
    output: str = ""  # what the tool returned (capped), for the Distiller
    thought: str = ""  # the reasoning the model gave with the call


class Outcome(BaseModel):
    """What happened after the answer: files edited, success if the host knows it, and what
    the change did in words (a commit message) if the host can say."""

    model_config = ConfigDict(extra="ignore")
    edited_files: list[str] = Field(default_factory=list)
    success: bool | None = None
    summary: str | None = None

    @model_serializer(mode="wrap")
    def _without_empty_summary(self, handler: SerializerFunctionWrapHandler) -> Any:
        """No `summary` key when there is none, so stored trajectories stay as they were."""
        data = handler(self)
        if isinstance(data, dict) and data.get("summary") is None:
            data.pop("summary", None)
        return data


class Trajectory(BaseModel):
    """A finished session: the Distiller's only input besides the map (no ground truth needed)."""

    model_config = ConfigDict(extra="ignore")
    question: str = Field(min_length=1)
    steps: list[Step] = Field(default_factory=list)
    answer: str
    citations: list[Citation] = Field(default_factory=list)
    outcome: Outcome = Field(default_factory=Outcome)

    @field_validator("citations")
    @classmethod
    def _spans(cls, citations: list[Citation]) -> list[Citation]:
        """A reported span names a file and runs forward from line 1 or later."""
        for n, c in enumerate(citations):
            if not c.path or c.start_line < 1 or c.end_line < c.start_line:
                raise ValueError(f"item {n}: {c.label()} is not a line span (lines start at 1 "
                                 "and run forward)")
        return citations


def parse_trajectory(raw: str | bytes | dict[str, Any], source: str = "trajectory") -> Trajectory:
    """Validate a trajectory, turning JSON and schema problems into one clear TrajectoryError."""
    if isinstance(raw, dict):
        data: Any = raw
    else:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise TrajectoryError(
                f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                f"expected {_CONTRACT}",
            ) from exc
        except RecursionError as exc:  # [[[[...]]]] deeper than the parser's stack
            raise TrajectoryError(f"{source} is not valid JSON: nested too deeply",
                                  f"expected {_CONTRACT}") from exc
    try:
        return Trajectory.model_validate(data)
    except ValidationError as exc:
        raise TrajectoryError(f"{source} does not match the trajectory contract: "
                              f"{_first_error(exc)}", f"expected {_CONTRACT}") from exc


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    where = ".".join(str(p) for p in errors[0]["loc"]) or "(top level)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {errors[0]['msg']}{more}"
