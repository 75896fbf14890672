"""`peek outcomes` and `peek corrections`: what recorded outcomes said, and what was taken back.

A wrong outcome is corrected by its session id (`peek record --session ID --correct`); these
are how a person finds that id weeks later, e.g. every outcome that taught a given file.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from peek.cli.common import CorpusArg, HomeOpt, JsonOpt, emit, opened

if TYPE_CHECKING:
    from peek.memory.outcomes import OutcomeCorrection, PastOutcome

LimitOpt = Annotated[int, typer.Option("--limit", min=1, help="Show at most this many.")]
EditedOpt = Annotated[str | None, typer.Option(
    "--edited", help="Only outcomes that edited this file (a path relative to the corpus).")]
SessionOpt = Annotated[str | None, typer.Option("--session", help="Only this session's.")]


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(seconds))


def _verdict(success: bool | None) -> str:
    return {True: "success", False: "failure", None: "no verdict"}[success]


def show(key: str, items: list[tuple[dict[str, Any], str]], empty: str, as_json: bool) -> None:
    """A listing as `{key: [...]}` JSON, or a line each (`empty` when there is none)."""
    if as_json:
        emit({key: [data for data, _ in items]})
        return
    for _, line in items:
        print(line)
    if not items:
        print(empty)


def outcome_line(o: PastOutcome) -> str:
    """One outcome: session, when, verdict, edited files, the question."""
    files = ", ".join(o.edited) or "(no files)"
    return f"{o.session}  {_when(o.recorded_at)}  {_verdict(o.success)}  {files}  · {o.question}"


def outcomes(corpus: CorpusArg, edited: EditedOpt = None, limit: LimitOpt = 20,
             home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Recorded outcomes, newest first: find the session to --correct or --retract."""
    with opened(corpus, home) as (peek, _cid):
        listed = peek.outcomes(limit, edited)
    empty = "(no recorded outcome" + (f" edited {edited})" if edited else ")")
    show("outcomes", [(o.to_dict(), outcome_line(o)) for o in listed], empty, as_json)


def correction_line(c: OutcomeCorrection) -> str:
    """One audit entry: when, session, retracted or corrected, what it said and what replaced it."""
    before = ", ".join(c.before.get("edited", [])) or "(no files)"
    after = "" if c.after is None else " -> " + (", ".join(c.after.get("edited", [])) or
                                                   "(no files)")
    return f"{_when(c.at)}  {c.session}  {c.reason}  {before}{after}"


def corrections(corpus: CorpusArg, session: SessionOpt = None, home: HomeOpt = None,
                as_json: JsonOpt = False) -> None:
    """The audit trail of retracted and corrected outcomes, oldest first."""
    with opened(corpus, home) as (peek, _cid):
        listed = peek.corrections(session)
    show("corrections", [(c.to_dict(), correction_line(c)) for c in listed],
         "(no outcome corrected or retracted)", as_json)
