"""The scripted model that ships with peek, like httpx's MockTransport: tests replay real turns.

It is the one scripted model: it answers the agent loop's chat turns and the JSON calls of the
map and memory (`peek.llmjson.JSONModel`), recording every prompt it was shown.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peek.agent.models import Message, Reply, ToolCall, ToolChoice, ToolSpec, Usage
from peek.errors import PeekError


@dataclass
class ScriptedModel:
    """Replays given replies in order and records every prompt it was shown."""

    replies: list[Reply]
    json_replies: list[str] = field(default_factory=list)
    name: str = "scripted"
    seen: list[list[Message]] = field(default_factory=list)
    seen_json: list[tuple[str, str]] = field(default_factory=list)

    def chat(self, messages: list[Message], tools: list[ToolSpec] | None = None,
             tool_choice: ToolChoice = "auto") -> Reply:
        """The next scripted reply; running out is an error, not a silent answer."""
        self.seen.append(list(messages))
        if not self.replies:
            raise PeekError("the scripted model has no replies left", "add turns to the script")
        return self.replies.pop(0)

    def complete_json(self, system: str, user: str, schema: dict[str, Any]) -> str:
        """The next scripted JSON text."""
        self.seen_json.append((system, user))
        if not self.json_replies:
            raise PeekError("the scripted model has no JSON replies left", "add json_replies")
        return self.json_replies.pop(0)

    @classmethod
    def answering_json(cls, json_replies: list[str]) -> ScriptedModel:
        """A model for the map's and memory's JSON calls only (no chat turns)."""
        return cls(replies=[], json_replies=list(json_replies))

    @classmethod
    def from_file(cls, path: Path) -> ScriptedModel:
        """Load a JSON script: {"turns": [{"content", "tool_calls": [...]}], "json": [...]}."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PeekError(f"cannot read model script {path}: {exc}", "give a JSON file") from exc
        try:
            return cls(replies=list(_replies(data.get("turns", []))),
                       json_replies=[json.dumps(j) if not isinstance(j, str) else j
                                     for j in data.get("json", [])])
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise PeekError(f"model script {path} is malformed ({type(exc).__name__}: {exc})",
                            'give {"turns": [{"content": str, "tool_calls": [{"name": str, '
                            '"arguments": {}}]}], "json": [...]}') from exc


def _replies(turns: Iterable[dict[str, Any]]) -> Iterable[Reply]:
    for n, turn in enumerate(turns):
        calls = tuple(
            ToolCall(c.get("id", f"call-{n}-{i}"), c["name"], dict(c.get("arguments", {})))
            for i, c in enumerate(turn.get("tool_calls", []))
        )
        usage = Usage(int(turn.get("input_tokens", 0)), int(turn.get("output_tokens", 0)))
        yield Reply(str(turn.get("content", "")), calls, usage)
