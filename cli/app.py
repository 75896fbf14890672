"""The `peek` command: a thin typer layer over the `Peek` service."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from peek.cli.common import CorpusArg, HomeOpt, JsonOpt, emit, open_peek
from peek.cli.map_commands import EvolveOpt, map_app, record
from peek.cli.memory_commands import memory_app
from peek.cli.outcome_commands import corrections, outcomes
from peek.cli.serve_commands import serve_model
from peek.cli.store_commands import migrate_store

if TYPE_CHECKING:
    pass

app = typer.Typer(
    name="peek",
    help="An orientation cache and agent memory for corpora that agents read again and again. "
    "Every command takes --db URL (or PEEK_DATABASE_URL): a shared PostgreSQL store, "
    "postgresql+psycopg://USER@HOST/DB; default: the SQLite file in the peek home.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: importing rich's renderer costs ~250 ms
)

app.add_typer(map_app, name="map", help="Show and correct a corpus's context map.")
app.command("record")(record)
app.command("outcomes")(outcomes)
app.command("corrections")(corrections)
app.add_typer(memory_app, name="memory", help="Episodic memory: ingest, search, episodes.")
app.command("serve-model")(serve_model)
app.command("migrate-store")(migrate_store)

@app.command()
def index(path: CorpusArg, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Index a corpus (incremental: only added or changed files are read)."""
    from peek.cli.render import index_progress, print_index_stats

    peek = open_peek(path, home)
    with index_progress(enabled=not as_json) as progress:
        stats = peek.index(progress)
    if as_json:
        emit(stats.to_dict())
    else:
        print_index_stats(stats)


@app.command()
def search(
    path: CorpusArg,
    query: Annotated[str, typer.Argument(help="Words, identifiers or a question.")],
    k: Annotated[int, typer.Option("-k", "--top", help="How many hits to show.")] = 10,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search an indexed corpus; every hit cites path:start-end."""
    from peek.cli.render import print_hits

    hits = open_peek(path, home).search(query, k)
    if as_json:
        emit({"results": [h.to_dict() for h in hits]})
    else:
        print_hits(hits)


ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="offline (default), local[:PATH.gguf], scripted:FILE, "
                 "or a litellm provider string such as openai/gpt-4o-mini."),
]
ApiBaseOpt = Annotated[
    str | None, typer.Option("--api-base", help="An OpenAI-compatible endpoint (vllm, llama.cpp).")
]
MaxStepsOpt = Annotated[int, typer.Option("--max-steps", help="Stop after this many steps.")]
MaxTokensOpt = Annotated[
    int | None, typer.Option("--max-tokens", help="Stop after this many model tokens.")
]
MaxCostOpt = Annotated[float | None, typer.Option("--max-cost", help="Stop after this many USD.")]


@app.command()
def ask(
    path: CorpusArg,
    question: Annotated[str, typer.Argument(help="The question; may be empty with --resume.")] = "",
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    max_steps: MaxStepsOpt = 12,
    max_tokens: MaxTokensOpt = None,
    max_cost: MaxCostOpt = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Continue a stopped session by its id.")
    ] = None,
    learn: Annotated[bool, typer.Option(
        "--learn/--no-learn", help="Store the session to learn from its outcome later; "
        "--no-learn writes nothing.")] = True,
    evolve_steps: EvolveOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    draft: Annotated[str, typer.Option(
        "--draft", help="With --model local: off, llma (copy from what was read) or rapid.")
    ] = "off",
) -> None:
    """Answer a question with cited path:start-end locations; `peek record` what it led to."""
    from peek.agent.registry import resolve_model
    from peek.agent.session import Budgets
    from peek.cli.render import print_answer, step_printer

    peek = open_peek(path, home)
    budgets = Budgets(max_steps, max_tokens, max_cost)
    result = peek.ask(question, resolve_model(model, api_base, draft, home), budgets,
                      session=resume,
                      resume=resume is not None, learn=learn,
                      evolve_steps="stored" if evolve_steps is None else evolve_steps,
                      on_event=None if as_json else step_printer())
    if as_json:
        emit(result.to_dict())
    else:
        print_answer(result)


@app.command("eval")
def evaluate(
    questions: Annotated[Path | None, typer.Argument(
        help="JSON lines with question and gold_files (not with --replay).")] = None,
    corpus: Annotated[list[Path] | None, typer.Option(
        "--corpus", help="The corpus to ask about; with --replay, repeatable: a corpus folder "
        "or a folder holding the replay's corpora by name.")] = None,
    replay_file: Annotated[Path | None, typer.Option(
        "--replay", help="Replay a history (corpus, question, gold_files per line, oldest "
        "first): ask, score, record the edits; learned vs off.")] = None,
    arms: Annotated[str, typer.Option(
        "--arms", help="With --replay: which arms to run, comma-separated.")] = "learned,off",
    evolve_steps: EvolveOpt = None,
    learn: Annotated[
        int, typer.Option("--learn", min=0, help="Teach the map with the first N, score the rest.")
    ] = 0,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    max_steps: MaxStepsOpt = 12,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score file-level recall@1/5/10 and MRR; with --learn or --replay, learning on vs off."""
    from peek.agent.registry import resolve_model
    from peek.agent.session import Budgets

    if replay_file is not None:
        _replay(replay_file, corpus or [Path(".")], arms, Budgets(max_steps), evolve_steps,
                as_json)
        return
    from peek.cli.render import print_eval
    from peek.evals.evaluate import evaluate as run_eval
    from peek.evals.evaluate import load_questions
    from peek.service import check_budgets

    if questions is None or not corpus:
        from peek.errors import QueryError

        raise QueryError("peek eval needs QUESTIONS and --corpus PATH (or --replay FILE)")
    check_budgets(Budgets(max_steps))
    report = run_eval(corpus[0], load_questions(questions), home=home,
                      model=resolve_model(model, api_base, home=home),
                      budgets=Budgets(max_steps),
                      learn_n=learn, evolve_steps=evolve_steps)
    if as_json:
        emit(report)
    else:
        print_eval(report)


def _replay(path: Path, corpora: list[Path], arms: str, budgets: Any,
            evolve_steps: int | None, as_json: bool) -> None:
    """`peek eval --replay`: a progress bar on a terminal, then the table or JSON."""
    from peek.cli.render import print_replay, replay_progress
    from peek.evals.replay import check_gold, load_replay, replay, resolve_corpora

    rows = load_replay(path)
    found = resolve_corpora(rows, corpora)
    chosen = [a.strip() for a in arms.split(",") if a.strip()]
    kept, dropped = check_gold(rows, found)
    if dropped and kept:  # none kept: replay says so in its one error line
        print(f"peek: warning: {len(dropped)} rows dropped, their gold files are not in the "
              f"corpus: {', '.join(str(d['id']) for d in dropped[:10])}"
              f"{' ...' if len(dropped) > 10 else ''}", file=sys.stderr)
    with replay_progress(len(kept) * len(chosen)) as advance:
        report = replay(rows, found, arms=chosen, budgets=budgets, on_row=advance,
                        evolve_steps=evolve_steps)
    if as_json:
        emit(report)
    else:
        print_replay(report)


@app.command()
def status(path: CorpusArg, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Is the index current? Indexed commit vs HEAD, files changed since, index age, map version."""
    from peek.cli.render import print_status

    report = open_peek(path, home).status()
    if as_json:
        emit(report.to_dict())
    else:
        print_status(report)


@app.command()
def corpora(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """List the corpora a store holds: root, index time and commit, files, map and memory."""
    from peek.cli.render import print_corpora
    from peek.config import Settings

    settings = Settings.load(home)
    listed = []
    # listing never creates a SQLite store (a server's is there, or the URL is wrong)
    if settings.database_url is not None or settings.db_path.exists():
        from peek.db import open_database
        from peek.status import list_corpora

        db = open_database(settings.store)
        try:
            listed = list_corpora(db)
        finally:
            db.close()
    if as_json:
        emit({"home": str(settings.home), "corpora": [c.to_dict() for c in listed]})
    else:
        print_corpora(str(settings.home), listed)


@app.command()
def mcp(
    transport: Annotated[Literal["stdio", "http"], typer.Option(
        "--transport", help="stdio (an IDE starts the server) or streamable HTTP.")] = "stdio",
    host: Annotated[str, typer.Option("--host", help="HTTP: the address to listen on.")] = (
        "127.0.0.1"),
    port: Annotated[int, typer.Option("--port", help="HTTP: the port to listen on.")] = 8765,
    home: HomeOpt = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help=(
        "Offer peek_ask with this model (as for `peek ask`); without it peek_ask is absent, "
        "since host agents bring their own model."))] = None,
    api_base: ApiBaseOpt = None,
    root: Annotated[list[Path] | None, typer.Option("--root", help=(
        "A folder whose corpora the server may serve (repeatable; also PEEK_ROOTS). Without "
        "one, only the roots the MCP host declares are allowed."))] = None,
) -> None:
    """Serve peek's tools (peek_map, peek_search, peek_read, peek_record, ...) over MCP."""
    from peek.cli.mcp_server import configured_roots, serve

    serve(transport, host, port, home, model, api_base, configured_roots(root or []))


@app.command()
def doctor(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Show versions, the store path, optional parts and whether tiktoken works offline."""
    from peek.cli.doctor import collect, print_report

    report = collect(home)
    if as_json:
        emit(report)
    else:
        print_report(report)


def main() -> None:
    """Entry point: run the app, turning known errors into one line on stderr and exit code 2."""
    from peek.cli.errors import run_guarded
    from peek.cli.terminal import guard_stdin, guard_stdout

    take_db_option(sys.argv)
    guard_stdin()
    guard_stdout()
    # peek's numpy work is small arrays: OpenBLAS's thread pool only adds ~50 ms to each start
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    code = run_guarded(app)
    if os.environ.get("PEEK_REPORT_RSS"):
        report_peak_rss()
    sys.exit(code)


def run() -> None:
    """The `peek` script and `python -m peek.cli`: `main`, then the process ends without the
    interpreter's teardown (freeing the tokenizer's tables, numpy and pydantic costs ~0.15 s, as
    much as a whole `peek search`) once nothing is left to finish: output flushed, exit handlers
    run, no other thread alive, no connection pool loaded; else it exits as `main` does.
    In-process callers use `main`."""
    code: str | int | None = 0
    try:
        main()
    except SystemExit as done:
        code = done.code
    if not isinstance(code, int) or not _may_end_now():
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()  # logging's flush, multiprocessing's children, temp folders
    _may_end_now()
    os._exit(code)


#: libraries whose connections may close only when the interpreter tears down (SQLAlchemy's
#: pool, psycopg's idle connections): a process that loaded one exits the usual way. peek's
#: plain sqlite3 connections are always closed by the `with` that opened them.
_POOLS = ("sqlalchemy", "psycopg")


def _may_end_now() -> bool:
    """Whether the process may end at once: no pool loaded, no other thread alive, the output
    flushed."""
    import threading

    if any(name in sys.modules for name in _POOLS):
        return False
    if any(t.is_alive() and not t.daemon and t is not threading.main_thread()
           for t in threading.enumerate()):
        return False
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):  # a closed pipe: the normal exit reports it as before
        return False
    return True


def take_db_option(argv: list[str]) -> None:
    """`--db URL` anywhere on the line (every command, `peek mcp` too) sets PEEK_DATABASE_URL;
    taken out before typer parses, so no command needs its own copy of the option."""
    for i, arg in enumerate(argv[1:], start=1):
        if arg == "--":
            return
        if arg.startswith("--db="):
            os.environ["PEEK_DATABASE_URL"] = arg.split("=", 1)[1]
            del argv[i]
            return
        if arg == "--db" and i + 1 < len(argv):
            os.environ["PEEK_DATABASE_URL"] = argv[i + 1]
            del argv[i : i + 2]
            return


def report_peak_rss() -> None:
    """For benchmarks: this process's peak resident set (VmHWM) on stderr, Linux only."""
    status = Path("/proc/self/status")
    if status.exists():
        hwm = next((line.split()[1] for line in status.read_text().splitlines()
                    if line.startswith("VmHWM:")), "0")
        sys.stderr.write(f"peek_vmhwm_kb {hwm}\n")
