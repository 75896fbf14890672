"""Tool globs (`**`, `*`, `?`, `[...]`, `{a,b}`) as anchored regexes; ignore files use pathspec."""

from __future__ import annotations

import re
from dataclasses import dataclass

import regex

from .errors import PathEscapeError, SandboxError

_MAX_EXPANSIONS = 64
MATCH_TIMEOUT_S = 0.25
_CLASS_SPECIALS = frozenset("\\^[]&~|")


class Glob:
    """A compiled glob; matching runs under a time limit, so `*a*a*a*...b` cannot hang a tool."""

    def __init__(self, pattern: str, compiled: regex.Pattern[str]) -> None:
        self.pattern = pattern
        self.compiled = compiled

    def fullmatch(self, rel: str) -> bool:
        """Whether the glob names the whole relative path; refuse a pattern too slow to match."""
        try:
            return self.compiled.fullmatch(rel, timeout=MATCH_TIMEOUT_S) is not None
        except TimeoutError as err:
            raise SandboxError(
                f"glob {self.pattern!r} is too complex to match; use fewer '*' in one name"
            ) from err


def compile_glob(pattern: str) -> Glob:
    """Compile a root-anchored glob into a matcher of whole relative paths."""
    alternatives = [_translate(expanded) for expanded in _expand_braces(pattern, pattern)]
    return Glob(pattern, regex.compile("(?:" + "|".join(alternatives) + ")", regex.DOTALL))


def normalize_tool_glob(pattern: str) -> str:
    """Check a glob for the glob tool: relative, no `..`, so it can only name files in the root."""
    if not isinstance(pattern, str) or not pattern.strip() or "\0" in pattern:
        raise SandboxError("glob pattern must be a non-empty string like '**/*.py'")
    if pattern.startswith("/"):
        raise SandboxError(f"glob {pattern!r} is absolute; use a pattern relative to the root")
    refuse_parent(pattern)
    while pattern.startswith("./"):
        pattern = pattern[2:]
    return pattern


def refuse_parent(pattern: str) -> None:
    """Refuse a glob with a `..` segment (glob and grep alike): it names nothing in the corpus."""
    if ".." in pattern.lstrip("!").split("/"):
        raise PathEscapeError(f"glob {pattern!r} uses '..'; patterns must stay inside the corpus")


@dataclass(frozen=True)
class GlobRule:
    """One gitignore-style glob: matched against a path relative to where the rule lives."""

    negated: bool
    dir_only: bool
    glob: Glob

    def matches(self, rel: str, is_dir: bool) -> bool:
        """Say whether this rule names the path itself (folders are pruned, not matched through)."""
        return (is_dir or not self.dir_only) and self.glob.fullmatch(rel)


def glob_rule(glob: str, negated: bool | None = None) -> GlobRule:
    """Parse a glob with gitignore rules: '!' negates, '/' anchors, a trailing '/' means folders."""
    if negated is None:
        negated = glob.startswith("!")
        glob = glob[1:] if negated else glob
    dir_only = glob.endswith("/")
    body = glob.rstrip("/")
    anchored = "/" in body
    return GlobRule(negated, dir_only, compile_glob(body.lstrip("/") if anchored else "**/" + body))


class PathFilter:
    """The `glob` filter of grep, with ripgrep's --glob rules, over the corpus's files only."""

    def __init__(self, glob: str) -> None:
        self.glob = glob
        self.rule = glob_rule(glob)

    def verdict(self, rel: str, is_dir: bool) -> bool | None:
        """Decide like rg --glob: True keeps, False drops, None has no opinion."""
        # A match keeps the path (drops it for '!'); a file missing a positive glob is dropped.
        # It only narrows: files the ignore rules exclude are never searched.
        if self.rule.matches(rel, is_dir):
            return not self.rule.negated
        return False if not (self.rule.negated or is_dir) else None


def _translate(pattern: str) -> str:
    parts = pattern.split("/")
    pieces = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            pieces.append(".+" if last else "(?:[^/]+/)*")
        else:
            pieces.append(_segment(part, pattern) + ("" if last else "/"))
    return "".join(pieces)


def _segment(segment: str, pattern: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(segment):
        char = segment[index]
        if char == "*":
            out.append("[^/]*")
            while index < len(segment) and segment[index] == "*":
                index += 1
            continue
        if char == "[":
            piece, index = _char_class(segment, index, pattern)
            out.append(piece)
            continue
        escaped = char == "\\" and index + 1 < len(segment)
        literal = segment[index + 1] if escaped else char
        out.append("[^/]" if char == "?" else re.escape(literal))
        index += 2 if escaped else 1
    return "".join(out)


def _char_class(segment: str, index: int, pattern: str) -> tuple[str, int]:
    start = index + 1
    negate = start < len(segment) and segment[start] in "!^"
    if negate:
        start += 1
    end = segment.find("]", start + 1)
    if end < 0:
        raise SandboxError(f"glob {pattern!r} has an unclosed '['; close it or escape it as '\\['")
    body = "".join("\\" + c if c in _CLASS_SPECIALS else c for c in segment[start:end])
    return ("[^/" if negate else "[") + body + "]", end + 1


def _expand_braces(pattern: str, original: str) -> list[str]:
    open_at, stray = pattern.find("{"), pattern.find("}")
    if stray >= 0 and (open_at < 0 or stray < open_at):
        raise SandboxError(f"glob {original!r} has a '}}' without '{{'; remove it")
    if open_at < 0:
        return [pattern]
    close_at = pattern.find("}", open_at)
    inner = pattern[open_at + 1 : close_at]
    if close_at < 0 or "{" in inner:
        raise SandboxError(f"glob {original!r} has an unclosed or nested '{{'; use flat {{a,b}}")
    head, tail = pattern[:open_at], pattern[close_at + 1 :]
    expanded = [
        head + choice + rest
        for choice in inner.split(",")
        for rest in _expand_braces(tail, original)
    ]
    if len(expanded) > _MAX_EXPANSIONS:
        raise SandboxError(f"glob {original!r} expands to too many patterns; use fewer braces")
    return expanded
