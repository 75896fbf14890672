"""QA pass 10: defects found in corrections, outcome listing and the script's exit, each with
the check that it stays fixed (real subprocesses of the `peek` script, a real store)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import PEEK_BIN, run_peek

from peek.errors import QueryError
from peek.service import Peek

WRONG, RIGHT = "shop/cart.py", "shop/invoice.py"
TRAJECTORY = {"question": "where are invoice totals rounded?",
              "steps": [{"tool": "read", "args": {}, "paths": ["shop/ledger.py"], "ok": True}],
              "answer": "shop/ledger.py", "citations": []}


def _host_session(shop: Path, session: str, edited: str) -> None:
    """An outcome a host agent recorded with its own trajectory (-t), not a `peek ask`."""
    path = shop.parent / f"{session}.json"
    path.write_text(json.dumps(TRAJECTORY), encoding="utf-8")
    done = run_peek("record", str(shop), "-t", str(path), "--session", session,
                    "--edited", edited, "--success")
    assert done.returncode == 0, done.stderr


def _one_line_error(done: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == code and len(lines) == 1, (done.returncode, done.stderr)
    assert lines[0].startswith("peek: error: ") and all(w in lines[0] for w in words), lines


def test_a_host_session_is_corrected_and_amended_by_its_id_alone(shop: Path) -> None:
    """`peek outcomes` names a host's session to --correct; the correction needed -t again
    and failed with "no session 'h1'" although the outcome was listed."""
    _host_session(shop, "h1", WRONG)
    listed = json.loads(run_peek("outcomes", str(shop), "--json").stdout)["outcomes"]
    assert [o["session"] for o in listed] == ["h1"]
    fixed = run_peek("record", str(shop), "--session", "h1", "--correct", "--edited", RIGHT,
                     "--success", "--json")
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(fixed.stdout)["status"] == "applied"
    trail = Peek(shop).corrections("h1")
    assert [(t.before["edited"], (t.after or {}).get("edited"), t.reason) for t in trail] == [
        ([WRONG], [RIGHT], "corrected")]
    outcome = Peek(shop).outcomes()[0]
    assert (outcome.session, outcome.edited, outcome.question) == (
        "h1", (RIGHT,), TRAJECTORY["question"])
    amended = run_peek("record", str(shop), "--session", "h1", "--summary", "round per line")
    assert amended.returncode == 0 and "amended" in amended.stdout, amended.stderr
    sdk = Peek(shop).record(session="h1", edited=[WRONG], success=False, correct=True)
    assert sdk.status == "applied" and len(Peek(shop).corrections("h1")) == 2
    _one_line_error(run_peek("record", str(shop), "--session", "nobody", "--correct",
                             "--edited", RIGHT, "--success"), 2, "no session 'nobody'")


def test_outcomes_edited_refuses_paths_out_of_the_corpus_and_resolves_dots(shop: Path) -> None:
    """`--edited ../../etc/passwd` listed nothing with exit 0 (an absolute path outside was
    refused); `src/../src/x.py` and `''` matched nothing silently."""
    _host_session(shop, "h2", RIGHT)
    for bad, words in (("../../etc/passwd", ("outside the corpus",)),
                       ("shop/../../x.py", ("outside the corpus",)),
                       ("", ("names no file",)), (".", ("names no file",))):
        _one_line_error(run_peek("outcomes", str(shop), "--edited", bad), 2, *words)
    dotted = run_peek("outcomes", str(shop), "--edited", "shop/../shop/invoice.py", "--json")
    assert [o["session"] for o in json.loads(dotted.stdout)["outcomes"]] == ["h2"]
    with pytest.raises(QueryError, match="outside the corpus"):
        Peek(shop).outcomes(edited="../secret.py")


def test_a_closed_stdout_is_a_one_line_error_not_silence(shop: Path) -> None:
    """`peek outcomes >&-` exited 0 having printed nothing; with --json it was an
    "unexpected error (AttributeError)"."""
    _host_session(shop, "h3", RIGHT)
    for extra in ((), ("--json",)):
        done = subprocess.run(["bash", "-c", 'exec "$@" >&-', "_", str(PEEK_BIN), "outcomes",
                               str(shop), *extra], capture_output=True, text=True, timeout=120)
        _one_line_error(done, 2, "standard output is closed")
    exported = shop.parent / "map.json"
    quiet = subprocess.run(["bash", "-c", 'exec "$@" >&-', "_", str(PEEK_BIN), "map", "export",
                            str(shop), "-o", str(exported)], capture_output=True, text=True,
                           timeout=120)
    assert quiet.returncode == 0, quiet.stderr  # a command that prints nothing still works
    assert json.loads(exported.read_text(encoding="utf-8"))


def _waiting_on_stdin(pid: int, limit: float = 30) -> None:
    """Until the process blocks reading its stdin pipe (or, without /proc's wchan, a while)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if "pipe" in Path(f"/proc/{pid}/wchan").read_text():
                return
        except OSError:
            time.sleep(3)
            return
        time.sleep(0.05)


def test_ctrl_c_mid_command_exits_130_with_one_line_and_records_nothing(shop: Path) -> None:
    """Ctrl-C inside a command exited 0 silently: typer turns it into a returned code 130
    that the guard dropped."""
    proc = subprocess.Popen([str(PEEK_BIN), "record", str(shop), "-t", "-", "--session", "c1",
                             "--edited", RIGHT, "--success"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _waiting_on_stdin(proc.pid)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    _one_line_error(done, 130, "interrupted")
    assert Peek(shop).outcomes() == []
    again = subprocess.run([str(PEEK_BIN), "record", str(shop), "-t", "-", "--session", "c1",
                            "--edited", RIGHT, "--success"], input=json.dumps(TRAJECTORY),
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert [o.session for o in Peek(shop).outcomes()] == ["c1"]


GUARDED_APP = """
import sys, typer
from peek.cli.errors import run_guarded
app = typer.Typer()

@app.command()
def fail(code: int) -> None:
    raise typer.Exit(code)

@app.command()
def fine() -> None:
    pass

sys.exit(run_guarded(app))
"""


def test_a_commands_typer_exit_code_is_the_exit_code() -> None:
    """`raise typer.Exit(code)` (serve-model when its server fails) ended with exit 0."""
    import sys

    def guarded(*args: str) -> int:
        return subprocess.run([sys.executable, "-c", GUARDED_APP, *args], capture_output=True,
                              text=True, timeout=60).returncode

    assert (guarded("fail", "4"), guarded("fine")) == (4, 0)


async def _mcp_record(home: Path, calls: list[dict[str, Any]]) -> list[Any]:
    """peek_record calls through a real stdio MCP client and server (this environment's)."""
    import os
    import sys

    from mcp import ClientSession, StdioServerParameters, stdio_client
    from test_mcp import server_args

    params = StdioServerParameters(command=sys.executable, args=server_args(home),
                                   env=dict(os.environ))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        return [await session.call_tool("peek_record", call) for call in calls]


def test_huge_session_ids_are_refused_on_record_and_never_echoed_whole(
        shop: Path, home: Path) -> None:
    """A 100,000-character session id was stored (in every table naming the session) and
    echoed whole in each error line."""
    import asyncio

    huge = "x" * 100_000
    path = shop.parent / "t.json"
    path.write_text(json.dumps(TRAJECTORY), encoding="utf-8")
    _one_line_error(run_peek("record", str(shop), "-t", str(path), "--session", huge,
                             "--edited", RIGHT, "--success"), 2, "at most 256 characters")
    retract = run_peek("record", str(shop), "--session", huge, "--retract")
    _one_line_error(retract, 2, "(100000 characters) has no recorded outcome")
    assert len(retract.stderr) < 400
    _one_line_error(run_peek("record", str(shop), "--session", huge, "--edited", RIGHT,
                             "--success"), 2, "at most 256 characters")
    report = {"corpus": str(shop.resolve()), "question": "where are totals rounded?",
              "files_edited": [RIGHT], "success": True}
    refused, nul = asyncio.run(_mcp_record(home, [{**report, "session": "y" * 300},
                                                  {**report, "session": "a\x00b"}]))
    assert refused.is_error and "at most 256 characters" in str(refused.content)
    assert nul.is_error and "NUL" in str(nul.content)
    assert Peek(shop).outcomes() == []


def test_json_nested_too_deeply_is_a_usage_error_that_writes_nothing(shop: Path) -> None:
    """`[[[[...]]]]` 200,000 deep in `record -t`, `map import` or `memory ingest` was an
    "unexpected error (RecursionError)", exit 1; args 900 lists deep passed parsing and failed
    when stored ("unexpected error (PydanticSerializationError)")."""
    deep = shop.parent / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    lines = shop.parent / "deep.jsonl"  # a .json file is remembered as a document
    lines.write_text(deep.read_text(encoding="utf-8"), encoding="utf-8")
    nested = shop.parent / "nested.json"
    args = {"a": json.loads("[" * 900 + "]" * 900)}
    nested.write_text(json.dumps({**TRAJECTORY, "steps": [{**TRAJECTORY["steps"][0],
                                                           "args": args}]}), encoding="utf-8")
    for command, words in (
            (("record", str(shop), "-t", str(deep), "--session", "d1"), "nested too deeply"),
            (("record", str(shop), "-t", str(nested), "--session", "d2", "--edited", RIGHT,
              "--success"), "cannot be stored"),
            (("map", "import", str(shop), str(deep)), "nested too deeply"),
            (("memory", "ingest", str(shop), str(lines)), "nested too deeply")):
        _one_line_error(run_peek(*command), 2, words)
    assert Peek(shop).outcomes() == []


def test_a_closed_or_empty_stdin_is_a_one_line_error(shop: Path) -> None:
    """`peek record -t - <&-` and `--summary - <&-` were "unexpected error (AttributeError)";
    an empty `--summary -` (a `git log` that printed nothing) was reported as a different
    outcome for the recorded session."""
    _host_session(shop, "h4", RIGHT)
    for args in (("-t", "-", "--session", "h5"), ("--session", "h4", "--summary", "-")):
        done = subprocess.run(["bash", "-c", 'exec "$@" <&-', "_", str(PEEK_BIN), "record",
                               str(shop), *args], capture_output=True, text=True, timeout=120)
        _one_line_error(done, 2, "standard input", "closed")
    empty = subprocess.run([str(PEEK_BIN), "record", str(shop), "--session", "h4", "--summary",
                            "-"], input=" \n", capture_output=True, text=True, timeout=120)
    _one_line_error(empty, 2, "summary read from stdin is empty")
    assert [(o.session, o.summary) for o in Peek(shop).outcomes()] == [("h4", None)]
