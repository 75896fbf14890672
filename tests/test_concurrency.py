"""Many clients, one store: 4 `peek mcp` servers and a `peek` CLI loop on one corpus and home.

For PEEK_CONCURRENCY_SECONDS (default 60) every client records sessions and re-indexes after
changing a file; afterwards the store must be intact, every recorded session must be in the map's
history, the map must be within its budget, and no client may have seen an error.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import PEEK_BIN, SAMPLE
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.types import CallToolResult

from peek.service import Peek

SERVERS = 4
INDEX_EVERY = 3  # each client re-indexes after every third recorded session
SECONDS = float(os.environ.get("PEEK_CONCURRENCY_SECONDS", "60"))
FILES = ["src/http/session.py", "src/http/adapters.py", "docs/guide.md", "README.txt"]


@dataclass
class Tally:
    """What all clients did and saw."""

    sessions: list[str] = field(default_factory=list)
    indexes: int = 0
    errors: list[str] = field(default_factory=list)


def touch(corpus: Path, client: str, n: int) -> None:
    """Change one file of this client's own, so the next index has something to read."""
    note = corpus / "notes" / f"{client}.md"
    note.parent.mkdir(exist_ok=True)
    with note.open("a", encoding="utf-8") as fh:
        fh.write(f"# {client} change {n}\n\nThe {client} client touched this file.\n")


def trajectory(client: str, n: int) -> dict[str, object]:
    """A distinct finished session for the trajectory contract."""
    read = [FILES[n % len(FILES)], FILES[(n + 1) % len(FILES)]]
    return {"question": f"{client} question {n}: where is {read[0]} used?",
            "steps": [{"tool": "read_file", "args": {"path": p}, "paths": [p]} for p in read],
            "answer": f"see {read[0]}",
            "citations": [{"path": read[0], "start_line": 1, "end_line": 1}],
            "outcome": {"edited_files": [], "success": n % 2 == 0}}


def checked(name: str, result: CallToolResult, tally: Tally) -> dict[str, object]:
    """The structured result, or an error noted in the tally."""
    if result.is_error or result.structured_content is None:
        tally.errors.append(f"{name}: {result.content}")
        return {}
    return dict(result.structured_content)


async def mcp_client(i: int, corpus: Path, home: Path, deadline: float, tally: Tally) -> None:
    """One server process and its client: record, and re-index after a change, until the end."""
    name = f"mcp{i}"
    args = ["-m", "peek.cli", "mcp", "--home", str(home), "--root", str(corpus)]
    params = StdioServerParameters(command=sys.executable, args=args)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        n = 0
        while time.monotonic() < deadline:
            n += 1
            files = [FILES[n % len(FILES)], FILES[(n + i) % len(FILES)]]
            result = await session.call_tool("peek_record", {
                "corpus": str(corpus), "question": f"{name} question {n}", "files_read": files,
                "files_edited": files[:1], "success": n % 2 == 0})
            tally.sessions.append(str(checked(name, result, tally).get("session")))
            if n % INDEX_EVERY == 0:
                touch(corpus, name, n)
                checked(name, await session.call_tool("peek_index", {"corpus": str(corpus)}),
                        tally)
                tally.indexes += 1
                checked(name, await session.call_tool("peek_map", {"corpus": str(corpus)}), tally)


async def peek_cli(*args: str) -> tuple[int, str, str]:
    """Run the installed `peek` script without blocking the other clients."""
    proc = await asyncio.create_subprocess_exec(
        str(PEEK_BIN), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def cli_client(corpus: Path, home: Path, work: Path, deadline: float, tally: Tally) -> None:
    """The CLI loop: `peek record` a trajectory, and `peek index` after a change."""
    n = 0
    while time.monotonic() < deadline:
        n += 1
        file = work / f"cli-{n}.json"
        file.write_text(json.dumps(trajectory("cli", n)), encoding="utf-8")
        rc, out, err = await peek_cli("record", str(corpus), "--trajectory", str(file), "--json",
                                      "--home", str(home))
        if rc != 0:
            tally.errors.append(f"peek record exited {rc}: {err.strip()}")
            continue
        tally.sessions.append(json.loads(out)["session"])
        touch(corpus, "cli", n)
        rc, _out, err = await peek_cli("index", str(corpus), "--json", "--home", str(home))
        if rc != 0:
            tally.errors.append(f"peek index exited {rc}: {err.strip()}")
        tally.indexes += 1


async def guarded(name: str, work: Awaitable[None], tally: Tally) -> None:
    """Await a client; an exception is an error the test reports, not a crash of the test."""
    try:
        await work
    except Exception as exc:  # noqa: BLE001 - every failure must be counted
        tally.errors.append(f"{name} crashed: {type(exc).__name__}: {exc}")


async def run_all(corpus: Path, home: Path, work: Path) -> Tally:
    """All clients at once, until the deadline."""
    tally = Tally()
    deadline = time.monotonic() + SECONDS
    clients = [guarded(f"mcp{i}", mcp_client(i, corpus, home, deadline, tally), tally)
               for i in range(SERVERS)]
    clients.append(guarded("cli", cli_client(corpus, home, work, deadline, tally), tally))
    await asyncio.gather(*clients)
    return tally


def stored_sessions(db: Path) -> set[str]:
    """Session ids the policy stored, read with plain sqlite3."""
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT session FROM map_sessions")}


@pytest.mark.slow
def test_four_servers_and_the_cli_share_one_store(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    for rel, content in SAMPLE.items():
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        (corpus / rel).write_text(content, encoding="utf-8")
    home = tmp_path / "home"
    peek = Peek(corpus, home)
    peek.index()
    peek.close()

    tally = asyncio.run(run_all(peek.root, home, tmp_path))

    assert not tally.errors, f"{len(tally.errors)} client errors, e.g. {tally.errors[:3]}"
    assert len(tally.sessions) >= 2 * (SERVERS + 1) and tally.indexes >= SERVERS + 1
    with sqlite3.connect(home / "peek.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    peek = Peek(corpus, home)
    try:
        history = {v.session for v in peek.map_history(limit=None)}
        assert set(tally.sessions) <= history | stored_sessions(home / "peek.db")
        view = peek.map()
        assert view.tokens <= view.budget_tokens
    finally:
        peek.close()
