"""The model layer: one small protocol, and the messages, tool calls and usage it speaks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

ToolChoice = Literal["auto", "required"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A model's request to run one tool with JSON arguments."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message in OpenAI form (role system/user/assistant/tool)."""

    role: str
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    def to_openai(self) -> dict[str, Any]:
        """The wire form litellm and OpenAI-compatible servers accept."""
        import json

        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                for c in self.tool_calls
            ]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        return out


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the model may call: a name, when to call it, and a plain JSON Schema."""

    name: str
    description: str
    parameters: dict[str, Any]

    def to_openai(self) -> dict[str, Any]:
        """The `tools=[...]` entry of an OpenAI-style request."""
        return {"type": "function", "function": {
            "name": self.name, "description": self.description, "parameters": self.parameters}}


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens in and out of one call, and its price when the provider's price is known."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None

    def __add__(self, other: Usage) -> Usage:
        cost = None if self.cost_usd is None and other.cost_usd is None else (
            (self.cost_usd or 0.0) + (other.cost_usd or 0.0))
        return Usage(self.input_tokens + other.input_tokens,
                     self.output_tokens + other.output_tokens, cost)


@dataclass(frozen=True, slots=True)
class Reply:
    """What a model said: text, tool calls, or both, and what it cost."""

    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)


@runtime_checkable
class Model(Protocol):
    """Anything that can chat with tools and produce JSON for a schema."""

    name: str

    def chat(self, messages: list[Message], tools: list[ToolSpec] | None = None,
             tool_choice: ToolChoice = "auto") -> Reply:
        """One turn: the model answers or asks for tools ("required": it must call one)."""
        ...

    def complete_json(self, system: str, user: str, schema: dict[str, Any]) -> str:
        """Raw text the model produced for a JSON-schema request (validated by the caller)."""
        ...
