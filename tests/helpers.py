"""Helpers shared by tests: a sample corpus and a runner for the real `peek` script."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from peek.db import Database

PEEK_BIN = Path(sys.executable).with_name("peek")
# The MCP tools a server offers without --model (outside checks rely on these names).
MCP_TOOLS = {"peek_map", "peek_search", "peek_read", "peek_record", "peek_status", "peek_index",
             "peek_memory_search"}


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write relative path -> content under root (created as needed) and return root."""
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    return root


def run_peek(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the installed `peek` console script as a real subprocess."""
    return subprocess.run(
        [str(PEEK_BIN), *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )


SAMPLE = {
    "src/http/session.py": (
        '"""HTTP sessions."""\nimport os\nfrom .adapters import HTTPAdapter\n\n\n'
        "class Session:\n"
        '    """A session keeps cookies and follows redirects."""\n\n'
        "    def resolve_redirects(self, resp):\n"
        '        """Follow each redirect the server sends."""\n'
        "        while resp.is_redirect:\n"
        "            resp = self.send(resp.next)\n"
        "        return resp\n\n"
        "    def send(self, request):\n"
        "        return HTTPAdapter().send(request)\n"
    ),
    "src/http/adapters.py": (
        "class HTTPAdapter:\n"
        "    def send(self, request):\n"
        "        return request\n\n\n"
        "def getMaxRetries():\n"
        "    return 3\n"
    ),
    "docs/guide.md": (
        "# Guide\n\nIntro text.\n\n## Redirects\n\nRedirects are followed by the session.\n"
    ),
    "README.txt": "A tiny sample corpus for tests.\n",
}


@functools.cache
def reference_encoding() -> Any:
    """tiktoken's own o200k_base loader, pointed at the bundled file for this one call: an
    independent check on peek's counting (which never touches TIKTOKEN_CACHE_DIR)."""
    import tiktoken

    from peek.tokens import bundled_bpe_file

    saved = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled_bpe_file().parent)
    try:
        return tiktoken.get_encoding("o200k_base")
    finally:
        if saved is None:
            os.environ.pop("TIKTOKEN_CACHE_DIR", None)
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = saved


def run_alembic(db: Database, action: Callable[[Any, str], None], revision: str) -> None:
    """Run an alembic command (upgrade, downgrade) on a store to a revision."""
    from alembic.config import Config

    import peek

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(peek.__file__).parent / "migrations"))
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        action(cfg, revision)
        conn.commit()


# A small click-like corpus: the test runner mentions environment variables far more often
# than the place that really reads them for options, so plain search ranks it first.
CLICK = {
    "src/click/core.py": (
        "class Parameter:\n"
        '    """A parameter of a command."""\n\n'
        "    def get_default(self, ctx):\n"
        "        return self.default\n\n\n"
        "class Option(Parameter):\n"
        '    """An option; its value may come from an envvar."""\n\n'
        "    def resolve_envvar_value(self, ctx):\n"
        "        rv = os.environ.get(self.envvar)\n"
        "        return rv\n\n"
        "    def value_from_envvar(self, ctx):\n"
        "        return self.resolve_envvar_value(ctx)\n"
    ),
    "src/click/testing.py": (
        "class CliRunner:\n"
        '    """Invoke a command in isolation with environment variables set."""\n\n'
        "    def __init__(self, env=None):\n"
        "        self.env = env  # environment variables for the invoked command\n\n"
        "    def isolation(self, env=None):\n"
        '        """Set environment variables, read options, restore the environment."""\n'
        "        environment = dict(env or {})  # environment variables\n"
        "        return environment\n"
    ),
    "src/click/utils.py": "def echo(message):\n    print(message)\n",
    "src/click/decorators.py": (
        "def option(*names, envvar=None):\n"
        '    """Attach an option to a command."""\n'
        "    return names\n"
    ),
}
