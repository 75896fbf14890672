"""`peek map ...` and `peek record`: show, correct and teach a corpus's context map.

`peek map <path>` shows the map (it is `peek map show <path>`); every other subcommand takes
the corpus path first: `peek map history <path>`, `peek map pin <path> ID`, ... Options go
after the path. Errors are PeekErrors, which `peek`'s main() prints as one line (exit 2).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from peek.cli.common import CorpusArg, HomeOpt, JsonOpt, command_group, emit, opened

if TYPE_CHECKING:
    from collections.abc import Callable

    from peek.agent.models import Model
    from peek.contextmap.policy import MapView, UpdateResult
    from peek.contextmap.store import EntryChange, VersionRecord
    from peek.service import Peek


map_app = command_group(
    "map",
    "Show and correct a corpus's context map. `peek map <path>` shows it (the same as "
    "`peek map show <path>`, which also works for a folder named like a command); every "
    "other command names the corpus after itself, e.g. `peek map pin <path> cr-00003`. "
    "Options go after the path.",
)

IdArg = Annotated[str, typer.Argument(help="An entry id such as cr-00003.")]
EvolveOpt = Annotated[int | None, typer.Option(
    "--evolve-steps", min=0, help="Freeze the map after M policy updates in all (PEEK's m).")]
BudgetOpt = Annotated[int | None, typer.Option(
    "--budget", help="Set the map's token budget (kept for later commands).")]


def print_view(view: MapView) -> None:
    """The rendered map, then one line of version and tokens."""
    if view.text:
        print(view.text)
        print()
    else:
        print("(the map is empty; it learns from sessions: peek record <path> --trajectory FILE)")
    stale = sum(1 for e, _ in view.entries if e.outdated)
    pinned = sum(1 for e, _ in view.entries if e.pinned)
    print(f"v{view.version} · {view.tokens}/{view.budget_tokens} tokens · "
          f"{len(view.entries)} entries ({pinned} pinned, {stale} stale)")


@map_app.command("show")
def show(path: CorpusArg, budget: BudgetOpt = None, as_json: JsonOpt = False,
         home: HomeOpt = None) -> None:
    """Show the map as agents see it (entries anchored to changed code are marked stale)."""
    with opened(path, home) as (peek, _cid):
        view = peek.map() if budget is None else peek.map_configure(budget)
    if as_json:
        emit(view.to_dict())
    else:
        print_view(view)


def _when(ts: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def print_history(versions: list[VersionRecord]) -> None:
    """Versions newest first, one line per edit."""
    if not versions:
        print("(no history yet)")
    for v in versions:
        print(f"v{v.version}  {_when(v.created_at)}  {v.session or '-'}")
        for e in v.edits:
            target = e.entry_id or "map"
            print(f"    {e.op:<8} {target:<10} {e.reason}")


@map_app.command("history")
def history(path: CorpusArg, limit: Annotated[int, typer.Option(
        "--limit", min=1, help="How many recent versions to show.")] = 20,
        as_json: JsonOpt = False, home: HomeOpt = None) -> None:
    """List the map's versions, newest first, with every edit and why it was made."""
    with opened(path, home) as (peek, _cid):
        versions = peek.map_history(limit)
        corpus = str(peek.root)
    if as_json:
        emit({"corpus": corpus, "versions": [v.to_dict() for v in versions]})
    else:
        print_history(versions)


def print_diff(changes: list[EntryChange]) -> None:
    """`+` added, `-` removed, `~` changed (old text, then new)."""
    if not changes:
        print("(no differences)")
    for c in changes:
        if c.before is None and c.after is not None:
            print(f"+ [{c.id}] {c.after.text}")
        elif c.after is None and c.before is not None:
            print(f"- [{c.id}] {c.before.text}")
        elif c.before is not None and c.after is not None:
            print(f"~ [{c.id}] {c.before.text}")
            print(f"  {' ' * (len(c.id) + 2)} {c.after.text}")


@map_app.command("diff")
def diff(path: CorpusArg, v1: Annotated[int, typer.Argument(help="The older version.")],
         v2: Annotated[int, typer.Argument(help="The newer version.")],
         as_json: JsonOpt = False, home: HomeOpt = None) -> None:
    """Show how the entries changed from version V1 to version V2."""
    with opened(path, home) as (peek, _cid):
        changes = peek.map_diff(v1, v2)
        corpus = str(peek.root)
    if as_json:
        emit({"corpus": corpus, "from": v1, "to": v2, "changes": [c.to_dict() for c in changes]})
    else:
        print_diff(changes)


def _change(path: Path, home: Path | None, act: Callable[[Peek], int]) -> tuple[str, int]:
    """Apply one map change to an opened corpus: (the corpus root, the new map version)."""
    with opened(path, home) as (peek, _cid):
        return str(peek.root), act(peek)


def _report(corpus: str, version: int, as_json: bool, message: str, **extra: Any) -> None:
    if as_json:
        emit({"corpus": corpus, "version": version, **extra})
    else:
        print(f"{message} (map v{version})")


@map_app.command("rollback")
def rollback(path: CorpusArg, version: Annotated[int, typer.Argument(
        help="The version to return to.")], as_json: JsonOpt = False,
        home: HomeOpt = None) -> None:
    """Make the entries what they were at a version; the rollback is itself a new version."""
    corpus, new = _change(path, home, lambda peek: peek.map_rollback(version))
    _report(corpus, new, as_json, f"rolled back to v{version}", rolled_back_to=version)


@map_app.command("pin")
def pin(path: CorpusArg, entry_id: IdArg, as_json: JsonOpt = False,
        home: HomeOpt = None) -> None:
    """Pin an entry: never evicted, never rewritten by the policy."""
    _set_pin(path, entry_id, True, as_json, home)


@map_app.command("unpin")
def unpin(path: CorpusArg, entry_id: IdArg, as_json: JsonOpt = False,
          home: HomeOpt = None) -> None:
    """Unpin an entry so that it competes for the budget again."""
    _set_pin(path, entry_id, False, as_json, home)


def _set_pin(path: Path, entry_id: str, pinned: bool, as_json: bool, home: Path | None) -> None:
    corpus, version = _change(path, home, lambda peek: peek.map_pin(entry_id, pinned))
    word = "pinned" if pinned else "unpinned"
    _report(corpus, version, as_json, f"{word} {entry_id}", id=entry_id, pinned=pinned)


@map_app.command("forget")
def forget(path: CorpusArg, entry_id: IdArg, as_json: JsonOpt = False,
           home: HomeOpt = None) -> None:
    """Remove an entry (history keeps it; `rollback` brings it back)."""
    corpus, version = _change(path, home, lambda peek: peek.map_forget(entry_id))
    _report(corpus, version, as_json, f"forgot {entry_id}", id=entry_id)


@map_app.command("edit")
def edit(path: CorpusArg, entry_id: IdArg,
         text: Annotated[str, typer.Argument(help="The entry's new text.")],
         as_json: JsonOpt = False, home: HomeOpt = None) -> None:
    """Rewrite an entry's text; its code anchors are re-stamped as current."""
    corpus, version = _change(path, home, lambda peek: peek.map_edit(entry_id, text))
    _report(corpus, version, as_json, f"edited {entry_id}", id=entry_id)


@map_app.command("reset")
def reset(path: CorpusArg, as_json: JsonOpt = False, home: HomeOpt = None) -> None:
    """Empty the map and restart its evolve steps (undo with `rollback`)."""
    corpus, version = _change(path, home, lambda peek: peek.map_reset())
    _report(corpus, version, as_json, f"reset; undo with: peek map rollback {path} {version - 1}")


@map_app.command("export")
def export(path: CorpusArg, output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write to this file instead of stdout.")] = None,
        home: HomeOpt = None) -> None:
    """Write the map (ids, counters, pins, anchors) as JSON that `import` restores."""
    with opened(path, home) as (peek, _cid):
        data = peek.map_export()
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        print(f"exported {len(data['entries'])} entries to {output}", file=sys.stderr)


@map_app.command("import")
def import_(path: CorpusArg, file: Annotated[Path, typer.Argument(
        help="A file written by `peek map export`.")], as_json: JsonOpt = False,
        home: HomeOpt = None) -> None:
    """Replace the map's entries with an exported map's (ids kept), within the budget."""
    raw = _read(file, "map file")
    with opened(path, home) as (peek, _cid):
        version = peek.map_import(raw)
        count = len(peek.map().entries)
        corpus = str(peek.root)
    _report(corpus, version, as_json, f"imported {count} entries", entries=count)


def _read(file: Path, what: str) -> str:
    """A file's text ('-' is stdin), or a MapError that says why it cannot be read."""
    from peek.contextmap.errors import MapError

    if str(file) == "-":
        return sys.stdin.read()
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MapError(f"cannot read {what} {file}: {exc}", "check the path") from exc


def print_update(result: UpdateResult) -> None:
    """Status line, then each edit."""
    print(f"session {result.session}: {result.status}, map v{result.version} "
          f"({result.tokens}/{result.budget_tokens} tokens)")
    if result.error:
        print(f"  error: {result.error}")
    print(f"  diagnosis: {result.diagnosis}")
    for entry_id, tag in sorted(result.tags.items()):
        print(f"  TAG      {entry_id:<10} {tag}")
    for e in result.edits:
        print(f"  {e.op:<8} {e.entry_id or '':<10} {e.text or ''}")


def _summary(summary: str | None, trajectory: Path | None) -> str | None:
    """--summary as given, or stdin's UTF-8 text for '-' (which one option at most reads)."""
    from peek.errors import QueryError

    if summary != "-":
        return summary
    if trajectory is not None and str(trajectory) == "-":
        raise typer.BadParameter("only one of --trajectory and --summary can read stdin",
                                 param_hint="--summary")
    try:
        text = sys.stdin.buffer.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise QueryError(f"summary from stdin is not UTF-8: byte {exc.start} ({exc.reason})",
                         "pipe UTF-8 text") from None
    if not text.strip():  # else a recorded session's report reads as a different outcome
        raise QueryError("the summary read from stdin is empty", "pipe the commit message "
                         "or a one-paragraph summary")
    return text


def _outcome(success: bool, failure: bool) -> bool | None:
    """--success, --failure or neither (no outcome reported); both at once is a mistake."""
    if success and failure:
        raise typer.BadParameter("give --success or --failure, not both", param_hint="--failure")
    return True if success else (False if failure else None)


def _distill_model(spec: str | None, api_base: str | None, home: Path | None) -> Model | None:
    """The --model to distill with (its registry loads only then), or None: the deterministic
    pair."""
    if not spec:
        return None
    from peek.agent.registry import resolve_model

    return resolve_model(spec, api_base, home=home)


def _retract(path: Path, session: str | None, home: Path | None, as_json: bool,
             more: bool) -> None:
    """`record --retract`: one session's outcome withdrawn, nothing else said with it."""
    if session is None:
        raise typer.BadParameter("--retract needs --session ID", param_hint="--session")
    if more:
        raise typer.BadParameter("--retract withdraws an outcome; give no outcome, trajectory "
                                 "or --correct with it", param_hint="--retract")
    with opened(path, home) as (peek, _cid):
        result = peek.retract(session)
    if as_json:
        emit(result.to_dict())
    else:
        print_update(result)


def record(
    path: CorpusArg,
    files: Annotated[list[str] | None, typer.Argument(
        help="More edited files (so `--edited a.py b.py` works).", show_default=False)] = None,
    trajectory: Annotated[Path | None, typer.Option(
        "--trajectory", "-t", help="The session's trajectory JSON ('-' reads stdin).")] = None,
    session: Annotated[str | None, typer.Option(
        "--session", help="A stored session (from `peek ask`), or the host's id for -t.")] = None,
    edited: Annotated[list[str] | None, typer.Option(
        "--edited", help="Files the user then edited (the outcome).")] = None,
    success: Annotated[bool, typer.Option(
        "--success", help="The session solved the task.")] = False,
    failure: Annotated[bool, typer.Option(
        "--failure", help="The session did not solve the task.")] = False,
    summary: Annotated[str | None, typer.Option(
        "--summary", help="What the change did, in words (e.g. its commit message; '-' reads "
        "stdin); a new one amends a recorded session's.")] = None,
    correct: Annotated[bool, typer.Option(
        "--correct", help="Replace the session's recorded outcome with this one (the audit "
        "trail keeps the old one).")] = False,
    retract: Annotated[bool, typer.Option(
        "--retract", help="Withdraw the session's recorded outcome: what it taught is taken "
        "back (needs --session and nothing else).")] = False,
    budget: BudgetOpt = None,
    evolve_steps: EvolveOpt = None,
    model: Annotated[str | None, typer.Option(
        "--model", "-m", help="Distill with this model (the LLM Distiller and Cartographer); "
        "default: the deterministic pair.")] = None,
    api_base: Annotated[str | None, typer.Option(
        "--api-base", help="An OpenAI-compatible endpoint for --model.")] = None,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
) -> None:
    """Report what a session led to (edited files, success): the signal that teaches peek.

    Applied once per session: recording the same outcome again changes nothing; --correct
    replaces a recorded outcome, --retract withdraws it.
    """
    outcome = _outcome(success, failure)
    if retract:
        _retract(path, session, home, as_json, bool(edited or files or trajectory or summary)
                 or outcome is not None or correct)
        return
    said = _summary(summary, trajectory)
    raw = _read(trajectory, "trajectory") if trajectory is not None else None
    with opened(path, home) as (peek, _cid):
        result = peek.record(raw, session=session, edited=[*(edited or []), *(files or [])],
                             success=outcome, budget=budget,
                             evolve_steps="stored" if evolve_steps is None else evolve_steps,
                             model=_distill_model(model, api_base, home),
                             summary=said, correct=correct)
    if as_json:
        emit(result.to_dict())
    else:
        print_update(result)
