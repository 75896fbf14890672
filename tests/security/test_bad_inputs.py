"""Bad-input catalogue over the CLI: every mistake is one line, `peek: error: ...`, exit 2.

Most cases run the real entry point (`peek.cli.app.main`) in this process with its own argv,
so the catalogue stays fast; a handful run the installed `peek` script as a subprocess to prove
the wiring. Each case asserts the exact message, that no traceback is printed and that the
store is left as it was.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from helpers import SAMPLE, run_peek, write_tree

from peek.cli.app import main
from peek.service import Peek

HUGE = str(10**20)
NOT_INT = "Input should be a valid integer"
K_RANGE = "k must be a whole number from 1 to 1000"
BUDGET_RANGE = "budget must be a whole number from 1 to 1000000"
STEPS_RANGE = "max_steps must be a whole number from 1 to 1000"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("bad")
    root = write_tree(base / "corpus", SAMPLE).resolve()
    home = base / "home"
    peek = Peek(root, home)
    peek.index()
    peek.close()
    unindexed = write_tree(base / "unindexed", {"a.py": "x = 1\n"})
    files = {
        "file": "just a file\n", "bad.jsonl": "{not json\n", "list.jsonl": "[1, 2]\n",
        "nogold.jsonl": '{"question": "q"}\n', "ok.jsonl": '{"question": "q", "gold_files": []}\n',
        "traj.json": '{"steps": "nope"}\n', "notjson.json": "nope\n",
    }
    write_tree(base, files)
    (base / "latin1.jsonl").write_bytes(b"\xff\xfe{}\n")
    return {"base": base, "root": root, "home": home, "unindexed": unindexed.resolve()}


def cases(w: dict[str, Path]) -> dict[str, tuple[list[str], dict[str, str], str]]:
    """id -> (argv, environment, exact message fragment)."""
    root, base, un = str(w["root"]), w["base"], str(w["unindexed"])
    f = str(base / "file")
    c: dict[str, tuple[list[str], dict[str, str], str]] = {
        "missing-arg": (["index"], {}, "Missing argument 'path'"),
        "unknown-command": (["frobnicate"], {}, "No such command 'frobnicate'"),
        "unknown-option": (["index", root, "--bogus"], {}, ("No such option", "--bogus")),
        "extra-arg": (["status", root, "extra"], {}, ("unexpected extra argument", "(extra)")),
        "k-abc": (["search", root, "q", "-k", "abc"], {}, ("'-k' / '--top'", "valid integer")),
        "k-float": (["search", root, "q", "-k", "1.5"], {}, ("'-k' / '--top'", "valid integer")),
        "k-missing": (["search", root, "q", "-k"], {}, "Option '-k' requires an argument"),
        "k-0": (["search", root, "q", "-k", "0"], {}, K_RANGE + ", got 0"),
        "k-neg": (["search", root, "q", "-k", "-1"], {}, K_RANGE + ", got -1"),
        "k-huge": (["search", root, "q", "-k", HUGE], {}, K_RANGE),
        "query-empty": (["search", root, "  "], {}, "the query is empty"),
        "no-folder": (["search", str(base / "nope"), "q"], {}, "no such folder"),
        "not-folder": (["search", f, "q"], {}, "not a folder"),
        "unindexed": (["search", un, "q"], {}, "is not indexed yet"),
        "map-budget-0": (["map", root, "--budget", "0"], {}, BUDGET_RANGE),
        "map-budget-huge": (["map", root, "--budget", HUGE], {}, BUDGET_RANGE),
        "map-budget-abc": (["map", root, "--budget", "abc"], {},
                           ("Invalid value for '--budget'", "valid integer")),
        "map-history-0": (["map", "history", root, "--limit", "0"], {}, 
                          ("Invalid value for '--limit'", "1")),
        "map-diff-abc": (["map", "diff", root, "a", "b"], {}, ("'v1'", "valid integer")),
        "map-pin-missing": (["map", "pin", root], {}, "Missing argument 'entry_id'"),
        "map-unknown-sub": (["map", "frob", root], {}, "unexpected extra argument"),
        "map-export-bad-dir": (["map", "export", root, "-o", str(base / "no" / "x.json")], {},
                               "No such file or directory"),
        "map-import-missing": (["map", "import", root, str(base / "nope.json")], {},
                               "nope.json"),
        "ask-steps-0": (["ask", root, "q", "--max-steps", "0"], {}, STEPS_RANGE + ", got 0"),
        "ask-steps-neg": (["ask", root, "q", "--max-steps", "-3"], {}, STEPS_RANGE),
        "ask-steps-huge": (["ask", root, "q", "--max-steps", HUGE], {}, STEPS_RANGE),
        "ask-tokens-neg": (["ask", root, "q", "--max-tokens", "-5"], {},
                           "max_tokens must be a whole number from 1"),
        "ask-tokens-huge": (["ask", root, "q", "--max-tokens", HUGE], {},
                            "max_tokens must be a whole number from 1"),
        "ask-cost-neg": (["ask", root, "q", "--max-cost", "-1"], {},
                         "max_cost must be a number from 0"),
        "ask-cost-nan": (["ask", root, "q", "--max-cost", "nan"], {},
                         "max_cost must be a number from 0"),
        "ask-cost-inf": (["ask", root, "q", "--max-cost", "inf"], {},
                         "max_cost must be a number from 0"),
        "ask-empty": (["ask", root, " "], {}, "the question is empty"),
        "ask-resume-offline": (["ask", root, "", "--resume", "abc"], {},
                               "--resume needs a model"),
        "eval-missing": (["eval", str(base / "nope.jsonl"), "--corpus", root], {},
                         "cannot read"),
        "eval-bad-json": (["eval", str(base / "bad.jsonl"), "--corpus", root], {},
                          "bad.jsonl:1 is not valid JSON"),
        "eval-list": (["eval", str(base / "list.jsonl"), "--corpus", root], {},
                      "list.jsonl:1 needs 'question'"),
        "eval-nogold": (["eval", str(base / "nogold.jsonl"), "--corpus", root], {},
                        "nogold.jsonl:1 needs 'question'"),
        "eval-latin1": (["eval", str(base / "latin1.jsonl"), "--corpus", root], {},
                        "is not UTF-8 text"),
        "eval-learn-all": (["eval", str(base / "ok.jsonl"), "--corpus", root, "--learn", "1"],
                           {}, "leaves no question to score"),
        "eval-steps-0": (["eval", str(base / "ok.jsonl"), "--corpus", root, "--max-steps", "0"],
                         {}, STEPS_RANGE),
        "eval-no-corpus": (["eval", str(base / "ok.jsonl")], {},
                           "peek eval needs QUESTIONS and --corpus PATH"),
        "record-nothing": (["record", root], {}, "nothing to record"),
        "record-bad-traj": (["record", root, "--trajectory", str(base / "notjson.json")], {},
                            "trajectory is not valid JSON"),
        "env-bytes-abc": (["status", root], {"PEEK_MAX_FILE_BYTES": "abc"},
                          "PEEK_MAX_FILE_BYTES must be a whole number of bytes from 1"),
        "env-bytes-0": (["status", root], {"PEEK_MAX_FILE_BYTES": "0"},
                        "PEEK_MAX_FILE_BYTES must be a whole number of bytes from 1"),
        "env-bytes-neg": (["status", root], {"PEEK_MAX_FILE_BYTES": "-5"},
                          "PEEK_MAX_FILE_BYTES must be a whole number of bytes from 1"),
        "env-bytes-float": (["status", root], {"PEEK_MAX_FILE_BYTES": "1e9"},
                            "PEEK_MAX_FILE_BYTES must be a whole number of bytes from 1"),
        "env-bytes-huge": (["status", root], {"PEEK_MAX_FILE_BYTES": HUGE},
                           "PEEK_MAX_FILE_BYTES must be a whole number of bytes from 1"),
        "env-home-file": (["status", root], {"PEEK_HOME": f}, "is a file, not a folder"),
        "env-home-under-file": (["index", root], {"PEEK_HOME": f + "/sub"},
                                "cannot create peek home"),
        "opt-home-file": (["status", root, "--home", f], {}, "is a file, not a folder"),
        "mcp-port-0": (["mcp", "--port", "0", "--root", root], {}, "--port must be from 1"),
        "mcp-port-huge": (["mcp", "--port", "70000", "--root", root], {}, "--port must be"),
        "mcp-transport": (["mcp", "--transport", "ftp"], {}, "'ftp' is not one of"),
        "mcp-root-missing": (["mcp", "--root", str(base / "nope")], {},
                             "--root names"),
        "mcp-root-file": (["mcp", "--root", f], {}, "--root names"),
        "env-roots-missing": (["mcp"], {"PEEK_ROOTS": str(base / "nope")}, "PEEK_ROOTS names"),
        "memory-k-0": (["memory", "search", root, "q", "-k", "0"], {}, K_RANGE),
        "memory-budget-neg": (["memory", "search", root, "q", "--budget", "-5"], {},
                              BUDGET_RANGE),
        "memory-unknown": (["memory", root, "frob"], {}, ("unexpected extra argument", "(frob)")),
        "memory-ingest-missing": (["memory", "ingest", root, str(base / "nope.jsonl")], {},
                                  "nope.jsonl"),
    }
    return c


def _ids() -> list[str]:
    fake = {"base": Path("/b"), "root": Path("/r"), "home": Path("/h"), "unindexed": Path("/u")}
    return list(cases(fake))


def run_main(argv: list[str], env: dict[str, str], home: Path, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    monkeypatch.setenv("PEEK_HOME", str(home))
    monkeypatch.delenv("PEEK_ROOTS", raising=False)
    monkeypatch.delenv("PEEK_MAX_FILE_BYTES", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "argv", ["peek", *argv])
    with pytest.raises(SystemExit) as done:
        main()
    out = capsys.readouterr()
    return int(done.value.code or 0), out.out, out.err


def store_bytes(home: Path) -> bytes:
    return (home / "peek.db").read_bytes()


@pytest.mark.parametrize("case", _ids())
def test_cli_bad_input(world: dict[str, Path], case: str, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> None:
    argv, env, message = cases(world)[case]
    before = store_bytes(world["home"])
    code, out, err = run_main(argv, env, world["home"], monkeypatch, capsys)
    assert code == 2, (out, err)
    assert err.startswith("peek: error: ") and err.count("\n") == 1, err
    fragments = (message,) if isinstance(message, str) else message
    for fragment in fragments:  # click versions word usage errors differently
        assert fragment.lower() in err.lower(), err
    assert "Traceback" not in err + out
    assert store_bytes(world["home"]) == before


@pytest.mark.parametrize("argv", [["search", "{root}", "q", "-k", "abc"], ["frobnicate"],
                                  ["search", "{root}", "q", "-k", HUGE]])
def test_the_installed_script_prints_one_line(world: dict[str, Path], argv: list[str]) -> None:
    done = run_peek(*[a.format(root=world["root"]) for a in argv],
                    env={"PEEK_HOME": str(world["home"])})
    assert done.returncode == 2
    assert done.stderr.startswith("peek: error: ") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_read_only_home_is_one_line(world: dict[str, Path], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes to read-only folders")
    home = tmp_path / "ro"
    home.mkdir()
    home.chmod(0o500)
    try:
        code, _, err = run_main(["index", str(world["root"])], {}, home, monkeypatch, capsys)
    finally:
        home.chmod(0o700)
    assert code == 2 and "is not writable" in err


def test_non_utf8_file_names_index(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "c", {"ok.py": "def fine():\n    pass\n"})
    (root / os.fsdecode(b"caf\xe9.py")).write_text("def latin_name():\n    pass\n")
    peek = Peek(root, tmp_path / "home")
    try:
        stats = peek.index()
        assert stats.files == 2
        assert [h.path for h in peek.search("latin_name", 3)][0] == "caf\\xe9.py"
        assert peek.status().dirty is False
    finally:
        peek.close()


def test_store_is_created_private(world: dict[str, Path]) -> None:
    assert (world["home"] / "peek.db").stat().st_mode & 0o077 == 0
