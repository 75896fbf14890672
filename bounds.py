"""The bounds every front door checks, with one message each: the CLI and MCP say the same."""

from __future__ import annotations

import math

from peek.errors import QueryError

K_MAX = 1000
MEMORY_BUDGET_MAX = 1_000_000
MAP_BUDGET_MAX = 1_000_000
STEPS_MAX = 1000
TOKENS_MAX = 1_000_000_000
COST_MAX = 1_000_000.0
SUMMARY_MAX = 4000  # characters: a commit message or a paragraph, not a diff
SESSION_MAX = 256  # characters: a host's task id or a uuid, not a document


def whole(name: str, value: object, low: int, high: int) -> int:
    """`value` as an int in [low, high], else a QueryError naming the allowed range."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise QueryError(f"{name} must be a whole number from {low} to {high}, got {_show(value)}")
    return value


def amount(name: str, value: object, high: float) -> float:
    """A non-negative, finite number up to `high` (a cost in USD)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)) or not 0 <= float(value) <= high:  # type: ignore[arg-type]
        raise QueryError(f"{name} must be a number from 0 to {high:g}, got {_show(value)}")
    return float(value)  # type: ignore[arg-type]


def check_k(k: object) -> int:
    """How many results: 1..K_MAX."""
    return whole("k", k, 1, K_MAX)


def check_memory_budget(budget: object) -> int:
    """A memory block's token budget: 1..MEMORY_BUDGET_MAX."""
    return whole("budget", budget, 1, MEMORY_BUDGET_MAX)


def check_map_budget(budget: object | None) -> int | None:
    """A map's token budget (None keeps the stored one): 1..MAP_BUDGET_MAX."""
    return None if budget is None else whole("budget", budget, 1, MAP_BUDGET_MAX)


def check_steps(max_steps: object) -> int:
    """Agent steps: 1..STEPS_MAX (zero steps could not read anything)."""
    return whole("max_steps", max_steps, 1, STEPS_MAX)


def check_tokens(max_tokens: object | None) -> int | None:
    """Model tokens for one session: None (no limit) or 1..TOKENS_MAX."""
    return None if max_tokens is None else whole("max_tokens", max_tokens, 1, TOKENS_MAX)


def check_cost(max_cost: object | None) -> float | None:
    """USD for one session: None (no limit) or 0..COST_MAX."""
    return None if max_cost is None else amount("max_cost", max_cost, COST_MAX)


def check_summary(summary: object | None) -> str | None:
    """What a change did, in words: None or blank (no summary), else text of up to
    SUMMARY_MAX characters that stores as UTF-8 on every backend (no NUL, no lone surrogate)."""
    if summary is None:
        return None
    if not isinstance(summary, str):
        raise QueryError(f"summary must be text, got {_show(summary)}")
    text = summary.strip()
    if len(text) > SUMMARY_MAX:
        raise QueryError(f"summary must be at most {SUMMARY_MAX} characters, got {len(text)}",
                         "give the commit message or a one-paragraph summary, not the diff")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise QueryError(f"summary is not valid UTF-8 text: {exc.reason} at character "
                         f"{exc.start}") from exc
    if "\x00" in text:
        raise QueryError("summary must not contain NUL characters")
    return text or None


def check_session(session: str | None) -> str | None:
    """A session id as stored in every table that names it: at most SESSION_MAX characters
    and no NUL (PostgreSQL text refuses it), so an id cannot be a megabyte copied N times."""
    if session is None:
        return None
    if len(session) > SESSION_MAX:
        raise QueryError(f"a session id must be at most {SESSION_MAX} characters, got "
                         f"{len(session)}", "use the host's task id or a uuid")
    if "\x00" in session:
        raise QueryError("a session id must not contain NUL characters")
    return session


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
