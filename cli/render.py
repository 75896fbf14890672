"""How CLI results look to a person: rich on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from peek.contextmap.citation import shown_path

if TYPE_CHECKING:
    from peek.agent.session import AskResult
    from peek.retrieval.indexer import IndexStats
    from peek.retrieval.lexical import Hit
    from peek.status import CorpusStatus, StoredCorpus


@contextmanager
def index_progress(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on a TTY (stderr), nothing otherwise."""
    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("reading"), BarColumn(), MofNCompleteColumn(), transient=True
    ) as bar:
        task = bar.add_task("index", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@contextmanager
def replay_progress(total: int) -> Iterator[Callable[[str, str, int, int], None] | None]:
    """A rich progress bar over every asked row on a TTY (stderr), nothing otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  transient=True) as bar:
        task = bar.add_task("replay", total=total)

        def advance(arm: str, corpus: str, done: int, rows: int) -> None:
            bar.update(task, advance=1, description=f"{arm} {corpus} {done}/{rows}")

        yield advance


def print_replay(report: dict[str, Any]) -> None:
    """Per arm and corpus: recall@1/5/10 and MRR on the later halves, then the curves."""
    keys = ("n", "recall@1", "recall@5", "recall@10", "mrr")
    print(f"replay of {report['rows']} rows; reported: {report['reported']}")
    if report.get("dropped"):
        print(f"dropped {len(report['dropped'])} rows whose gold files are not in the corpus")
    print("| arm     | corpus               | " + " | ".join(f"{k:>9}" for k in keys) + " |")
    for arm, data in report["arms"].items():
        for corpus, row in [*data["corpora"].items(), ("all", data["all"])]:
            values = " | ".join(f"{row.get(k, ''):>9}" for k in keys)
            print(f"| {arm:<7} | {corpus:<20} | {values} |")
    for arm, data in report["arms"].items():
        tune = data["tune"]["all"]
        print(f"tune split (rows 25-50% of each corpus) {arm}: " + ", ".join(
            f"{k} {tune.get(k, '')}" for k in keys))
    if "gain_recall@5" in report:
        gains = ", ".join(f"{c} {g:+.3f}" for c, g in report["gain_recall@5"].items())
        print(f"learning gain, recall@5: {gains}")
    for arm, data in report["arms"].items():
        for corpus, curve in data["curve"].items():
            print(f"curve {arm} {corpus} (recall@5 per 50 rows): {' '.join(map(str, curve))}")
    if "learned_ms" in report:
        print(f"learned arm p50: ask {report['learned_ms']['ask']} ms, "
              f"record {report['learned_ms']['record']} ms")
    for corpus, state in report["arms"].get("learned", {}).get("map", {}).items():
        print(f"learned map {corpus}: {map_line(state)}")


def map_line(state: dict[str, Any]) -> str:
    """A learned store's map as an eval saw it last: version, updates, evolve steps."""
    m = state["evolve_steps"]
    steps = "" if m is None else f" of {m} evolve steps" + (", frozen" if state["frozen"] else "")
    return f"v{state['version']}, {state['updates']} policy updates{steps}"


def print_index_stats(stats: IndexStats) -> None:
    """One summary line, then what was skipped and why."""
    print(
        f"indexed {stats.corpus}: {stats.files} files, {stats.chunks} chunks "
        f"(+{stats.added} ~{stats.changed} -{stats.removed}) in {stats.seconds:.2f}s"
    )
    skipped = [
        (stats.skipped_binary, "binary"),
        (stats.skipped_large, "over the size cap"),
        (len(stats.unreadable), "unreadable"),
    ]
    for count, why in skipped:
        if count:
            print(f"  skipped {count} {why}")
    if stats.decode_errors:
        print(f"  replaced {stats.decode_errors} invalid UTF-8 sequences")


def print_hits(hits: list[Hit]) -> None:
    """Ranked hits, each with a path:start-end citation."""
    if not hits:
        print("no matches")
        return
    width = len(str(len(hits)))
    for rank, hit in enumerate(hits, 1):
        label = f"  {hit.symbol}" if hit.symbol else ""
        where = f"{shown_path(hit.path)}:{hit.start_line}-{hit.end_line}"
        print(f"{rank:>{width}}. {where}{label}  ({hit.score:.2f})")


def step_printer() -> Callable[[dict[str, Any]], None] | None:
    """Stream the agent's steps to stderr with rich on a TTY; nothing when piped."""
    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.markup import escape

    from peek.cli.terminal import escape_controls

    console = Console(stderr=True)

    def said(value: object) -> str:  # a model's words: neither markup nor terminal controls
        return escape(escape_controls(str(value)))

    def show(event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "tool":
            mark = "[green]✓[/]" if event.get("ok") else "[red]✗[/]"
            args = ", ".join(f"{k}={v!r}" for k, v in (event.get("args") or {}).items())
            console.print(f"{mark} step {said(event.get('step'))}: "
                          f"{said(event.get('tool'))}({said(args[:120])})")
        elif kind in ("stopped", "learned"):
            console.print(f"[dim]{kind}: {said(event.get('stopped_by') or event.get('status'))}[/]")

    return show


def print_answer(result: AskResult) -> None:
    """The answer, then how it ended: steps, tokens, cost, session and map version."""
    print(result.answer)
    cost = f", ${result.cost_usd:.4f}" if result.cost_usd is not None else ""
    stop = f"; stopped by {result.stopped_by}" if result.stopped_by else ""
    print(
        f"\n[{result.model}: {result.steps} steps, "
        f"{result.input_tokens + result.output_tokens} tokens{cost}; session {result.session}; "
        f"map v{result.map_version}{stop}]"
    )


def print_eval(report: dict[str, object]) -> None:
    """A small table: learned (or plain) run, and the empty-map run beside it."""
    keys = ("n", "recall@1", "recall@5", "recall@10", "mrr", "steps_mean", "seconds_mean")
    runs = [("map", report)]
    if isinstance(report.get("no_map"), dict):
        runs.append(("no map", report["no_map"]))  # type: ignore[arg-type]
    print("| run    | " + " | ".join(f"{k:>12}" for k in keys) + " |")
    for name, run in runs:
        values = " | ".join(f"{run.get(k, ''):>12}" for k in keys)  # type: ignore[attr-defined]
        print(f"| {name:<6} | {values} |")
    if isinstance(report.get("map"), dict):
        print(f"map: {map_line(report['map'])}")  # type: ignore[arg-type]


def print_status(status: CorpusStatus) -> None:
    """One line on freshness, then the files that differ from the index."""
    if not status.indexed:
        print(f"{status.corpus}: not indexed (run: peek index {status.corpus})")
        return
    if status.index_age_seconds is None:  # a first index stopped before it finished
        print(f"{status.corpus}: the first index has not finished ({status.files} files so "
              f"far; if it was stopped, run: peek index {status.corpus})")
        return
    age = f"{status.index_age_seconds / 60:.0f} min ago"
    state = "out of date" if status.dirty else "up to date"
    commit = f", commit {status.indexed_commit[:10]}" if status.indexed_commit else ""
    print(f"{status.corpus}: {status.files} files indexed {age}{commit}; {state}; "
          f"map v{status.map_version}")
    print(f"  learned from {_n(status.outcomes, 'recorded outcome')} of "
          f"{_n(status.sessions, 'session')} ({_n(status.ranker_updates, 'ranker update')})"
          + (f"; {_n(status.corrections, 'outcome')} corrected or retracted"
             if status.corrections else ""))
    if status.head_commit and status.head_commit != status.indexed_commit:
        print(f"  HEAD is now {status.head_commit[:10]}")
    for label, paths in (("changed", status.changed), ("added", status.added),
                         ("removed", status.removed)):
        for path in paths[:20]:
            print(f"  {label:<8} {shown_path(path)}")
        if len(paths) > 20:
            print(f"  ... and {len(paths) - 20} more {label}")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def print_corpora(home: str, corpora: list[StoredCorpus]) -> None:
    """One line per corpus: root, files, commit, map version and memory size."""
    if not corpora:
        print(f"no corpus in {home} yet (run: peek index PATH)")
        return
    import datetime

    for c in corpora:
        when = (datetime.datetime.fromtimestamp(c.indexed_at).strftime("%Y-%m-%d %H:%M")
                if c.indexed_at else "never")
        commit = f" @ {c.indexed_commit[:10]}" if c.indexed_commit else ""
        print(f"{c.root}: {c.files} files, indexed {when}{commit}; map v{c.map_version} "
              f"({c.map_entries} entries); memory {c.memory_turns} turns")
