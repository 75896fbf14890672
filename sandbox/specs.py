"""Tool descriptions for an LLM (name, when to call, JSON Schema) and checking of call arguments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import SandboxError


def _prop(kind: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "description": description, **extra}


def _spec(
    name: str, description: str, properties: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    return {"name": name, "description": description, "parameters": schema}


_PATH = "Path relative to the corpus root, e.g. 'src/app.py'; '.' is the root."

TOOL_SPECS: list[dict[str, Any]] = [
    _spec(
        "list_dir",
        "List the entries of one corpus folder (name, kind, size); call it to see what a folder "
        "holds before opening files.",
        {"path": _prop("string", _PATH, default=".")},
        [],
    ),
    _spec(
        "read_file",
        "Read lines of a text file, numbered; call it once you know which file (and lines) "
        "matter, and use start/end to read long files in parts.",
        {
            "path": _prop("string", _PATH),
            "start": _prop("integer", "First line to return, 1-based (default 1).", minimum=1),
            "end": _prop(
                "integer", "Last line to return, inclusive (default: end of file).", minimum=1
            ),
        },
        ["path"],
    ),
    _spec(
        "grep",
        "Search file contents with a regular expression (Python syntax) and get matching lines "
        "as path, line and text; call it to find where an identifier, word or phrase occurs.",
        {
            "pattern": _prop("string", "Regular expression matched against each line."),
            "glob": _prop(
                "string",
                "Only search files matching this glob, ripgrep style: "
                "'*.py' (any folder), 'src/**/*.ts', '!tests/**' to exclude; files it names "
                "are searched even when .gitignore lists them.",
            ),
            "ignore_case": _prop("boolean", "Match letters case-insensitively.", default=False),
            "max_results": _prop("integer", "Stop after this many matching lines.", minimum=1),
        },
        ["pattern"],
    ),
    _spec(
        "glob",
        "List files whose path matches a glob such as '**/*.py', 'src/*.{ts,tsx}' or "
        "'**/README*'; call it to find files by name (.git and .gitignored files are skipped).",
        {"pattern": _prop("string", "Glob relative to the corpus root; '**' spans folders.")},
        ["pattern"],
    ),
    _spec(
        "find_symbol",
        "Find where a function, class, method or type is defined (file and line span); call it "
        "when you know a name and want its definition rather than every mention.",
        {"name": _prop("string", "The bare name, e.g. 'resolve_redirects' or 'Session'.")},
        ["name"],
    ),
]

TOOL_NAMES = tuple(spec["name"] for spec in TOOL_SPECS)
_SCHEMAS = {spec["name"]: spec["parameters"] for spec in TOOL_SPECS}


def check_args(tool: str, args: object) -> dict[str, Any]:
    """Validate (and gently coerce) an agent's arguments against the tool's JSON Schema."""
    schema = _SCHEMAS.get(tool) if isinstance(tool, str) else None
    if schema is None:
        raise SandboxError(f"unknown tool {tool!r}; available tools: {', '.join(TOOL_NAMES)}")
    if not isinstance(args, Mapping):
        raise SandboxError(f"arguments for {tool} must be an object, got {type(args).__name__}")
    given = {key: value for key, value in args.items() if value is not None}
    properties: dict[str, Any] = schema["properties"]
    unknown = sorted(set(given) - set(properties))
    if unknown:
        raise SandboxError(
            f"unknown argument {unknown[0]!r} for {tool}; allowed: {', '.join(properties)}"
        )
    missing = [key for key in schema["required"] if key not in given]
    if missing:
        raise SandboxError(f"{tool} needs the argument {missing[0]!r}")
    return {key: _coerce(tool, key, value, properties[key]) for key, value in given.items()}


def _coerce(tool: str, key: str, value: object, prop: dict[str, Any]) -> Any:
    kind = prop["type"]
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "boolean" and (isinstance(value, bool) or value in ("true", "false")):
        return value if isinstance(value, bool) else value == "true"
    if kind == "integer":
        number = _integer(value)
        if number is not None and number >= prop.get("minimum", number):
            return number
    raise SandboxError(f"argument {key!r} of {tool} must be {_describe(prop)}, got {value!r}")


def _integer(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = value.strip() if isinstance(value, str) else ""
    if text.isascii() and text.removeprefix("-").isdigit():
        return int(text)
    return None


def _describe(prop: dict[str, Any]) -> str:
    if prop["type"] == "integer" and "minimum" in prop:
        return f"an integer >= {prop['minimum']}"
    return {"string": "a string", "boolean": "true or false"}.get(prop["type"], "an integer")
